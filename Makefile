# The two commands: `make run` and `make test`. Both set themselves up.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test bench venv clean package deploy browser publish-pwa

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m localdev.run

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 -q

# Debian's Chromium and Japanese fonts for the browser tests and Lighthouse (root, or sudo).
browser:
	sh tools/install-browser.sh

bench: $(STAMP)
	@failed=""; for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "over budget:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

STAGE ?= prod
STACK ?= chiiki-points-$(STAGE)
MAIL_DOMAIN ?= points.example.jp
ANCHOR_RETENTION_DAYS ?= 3650

# Deployment (needs AWS credentials): write the CloudFormation template, check it, deploy it.
package: $(STAMP)
	rm -rf build/$(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-ap-northeast-1} $(BIN)/chalice package --stage $(STAGE) --merge-template infra/template.json build/$(STAGE)
	$(BIN)/python tools/precompile.py build/$(STAGE)/deployment.zip
	$(BIN)/cfn-lint build/$(STAGE)/sam.json

deploy: package
	aws cloudformation package --template-file build/$(STAGE)/sam.json --s3-bucket $(DEPLOY_BUCKET) --output-template-file build/$(STAGE)/packaged.json
	@test -n "$(OPERATOR_EMAIL)" || { echo 'set OPERATOR_EMAIL=<who receives the alarms>'; exit 1; }
	aws cloudformation deploy --template-file build/$(STAGE)/packaged.json --stack-name $(STACK) \
	  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
	  --parameter-overrides Stage=$(STAGE) OperatorEmail=$(OPERATOR_EMAIL) MailDomain=$(MAIL_DOMAIN) \
	  AnchorRetentionDays=$(ANCHOR_RETENTION_DAYS)
	$(MAKE) publish-pwa STAGE=$(STAGE)

# MyPage's files to the stack's site bucket, then CloudFront's copies dropped (part of deploy).
publish-pwa:
	@output() { aws cloudformation describe-stacks --stack-name $(STACK) --output text \
	  --query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue"; }; \
	bucket=$$(output SiteBucketName) && distribution=$$(output DistributionId) && \
	aws s3 sync pwa/ s3://$$bucket/ --delete && \
	aws cloudfront create-invalidation --distribution-id $$distribution --paths '/*' >/dev/null && \
	echo "MyPage published to s3://$$bucket/ and CloudFront $$distribution"
