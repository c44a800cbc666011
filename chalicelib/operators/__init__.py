"""The operators' context: the IAM-authorized admin API (card return, damage reissue,
void; the registry of merchants, terminals, events, rates and campaigns; admin grant
lists; running a scheduled job by hand). The CLI that calls it is tools/admin/."""
