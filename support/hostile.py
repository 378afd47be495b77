"""Task ids that try to reach outside the results prefix, for every provider's tests."""

HOSTILE_IDS = [
    "../../secret",
    "../secret",
    "/secret",
    "a/../../secret",
    "..",
    ".",
    "%2e%2e%2fsecret",
    "x\\..\\y",
    # an HTTP store parses a '?' or '#' in a URL path, and Windows tools drop a trailing dot
    "x.",
    "a?comp=list",
    "a#fragment",
    "...",
]
