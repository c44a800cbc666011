"""Ship bytecode in the Lambda package: `make package` runs this on chalice's deployment.zip.

Lambda's /var/task is read-only, so Python cannot write the __pycache__ of the package's
modules: without bytecode in the zip, every cold start compiles app.py, chalicelib and
every packaged dependency (PynamoDB, Powertools, the signature libraries, ...) from
source again (bench/coldstart.py measures a first request with and without). This adds,
beside each .py, its `__pycache__/<name>.cpython-XY.pyc` compiled by this interpreter
(chalice packages for the local Python's minor version, so the runtime's tag matches)
in `unchecked-hash` mode: the runtime never compares it with the source's time stamp,
which a zip does not keep exactly. Nothing is written outside the zip (a source tree
holding unchecked bytecode would ignore its own edits).

    python tools/precompile.py build/prod/deployment.zip
"""

from __future__ import annotations

import compileall
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path


def precompile(package: Path) -> int:
    """Add bytecode for every module in the zip (in place); returns how many files it added."""
    with tempfile.TemporaryDirectory(prefix="chiiki-precompile-") as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(package) as source:
            infos = source.infolist()
            source.extractall(root)
        names = {info.filename for info in infos}
        compileall.compile_dir(root, quiet=2, ddir="/var/task", workers=1,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        added = sorted(str(p.relative_to(root)) for p in root.rglob("*.pyc") if str(p.relative_to(root)) not in names)
        rebuilt = package.with_suffix(".tmp")
        with zipfile.ZipFile(package) as source, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as target:
            for info in infos:
                target.writestr(info, source.read(info))
            for name in added:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, (root / name).read_bytes())
        rebuilt.replace(package)
    return len(added)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print(f"{argv[0]}: {precompile(Path(argv[0]))} bytecode files added")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
