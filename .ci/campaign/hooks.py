"""What the broker contract says and its OpenAPI file cannot: sending both
If-Match and If-None-Match is 400 (the header schemas are per header), so a
case with both is no valid request and not worth a positive check."""

import schemathesis


@schemathesis.hook
def filter_case(context, case):
    names = {name.lower() for name in (case.headers or {})}
    return not {"if-match", "if-none-match"} <= names
