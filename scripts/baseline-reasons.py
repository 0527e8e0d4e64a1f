#!/usr/bin/env python3
"""Draft a target's baseline from a matrix's JSON report, keeping the reasons
the current baseline already gives.

  baseline-reasons.py MATRIX.json NAME [corpus/baselines/NAME.toml] > NEW.toml

A divergence the current baseline lists keeps its reason; a new one gets the
first reason whose rule below matches (class prefix, check, a substring of the
answer). One that nothing explains is written as "UNEXPLAINED" so that it
cannot slip into a baseline unread.
"""
import json
import sys
import tomllib

RULES = [
    # (class prefix, check or None, substring of actual or None, reason)
    ("", "shape.request_id", "is not a UUID", "RequestId is a 52-character random string, not a UUID"),
    ("", "shape.request_id", "but header", "the body's RequestId differs from the x-amzn-RequestId header"),
    ("", "shape.order", None, "keys are listed in upload order, not by key id (AWS's order is inferred)"),
    ("", "shape.elements", "Error/message", "the error envelope carries a lowercase <message> element beside <Message>"),
    ("", None, "ListAllMyBucketsResult", "a request not signed for iam is routed to S3 and answered as ListBuckets"),
    ("", None, "Buckets", "a request not signed for iam is routed to S3 and answered as ListBuckets"),
    ("protocol.unsigned", None, None, "a request not signed for iam is routed to S3 and answered as ListBuckets"),
    ("protocol.other_service_scope", None, None, "a request signed for another service is routed to that service's backend (S3 lists buckets, others crash with 500)"),
    ("protocol.action.", None, None, "an unknown or empty Action crashes with 500 or answers 404 with an HTML page; a missing one 404 instead of the 302 redirect"),
    ("protocol.version.", None, None, "the Version parameter is not checked: any Version or none is served as 2010-05-08"),
    ("protocol.json_body", None, None, "a body that is not a form (no Action) answers 404 instead of the 302 redirect"),
    ("protocol.no_content_type", None, None, "a form without Content-Type answers 404 instead of the 302 redirect"),
    ("protocol.invalid_utf8", None, None, "a UserName whose percent-encoding is not UTF-8 is not refused: the user is looked up and not found (404)"),
    ("protocol.lowercase_members", None, None, "members are looked up by their exact names; missing ones become 'None' and no validation error is raised"),
    ("protocol.get.list", None, None, "ListSSHPublicKeys leaves out IsTruncated when it is false"),
    ("", "shape.fields", "Fingerprint", "Fingerprint is 32 bare hex digits of another digest, not the colon-separated MD5 of the key blob"),
    ("", "shape.id_form", "UserId", "UserId is 20 lower-case characters, not AIDA + 17 upper-case (inferred)"),
    ("sequence.", None, None, "a step of a random sequence diverges (see the classes of its operation)"),
    ("list.ok.truncated", None, None, "MaxItems is ignored: every key is returned, without IsTruncated or Marker"),
    ("list.ok.", "shape.elements", None, "ListSSHPublicKeys leaves out IsTruncated when it is false"),
    ("list.max_items.not_a_number", None, None, "a MaxItems that is not a number crashes with 500 (HTML)"),
    ("list.max_items.", None, None, "MaxItems is not validated against 1..1000"),
    ("list.marker.garbage", None, None, "an unknown Marker is accepted (AWS: Invalid Marker., inferred)"),
    ("list.marker.", None, None, "Marker length is not validated"),
    ("list.user_name.missing", None, None, "no UserName is taken as the user 'None' (AWS: must specify userName with non-user credentials, inferred)"),
    ("update.status.expired", None, None, "Status=Expired is accepted and stored (AWS: 400 InvalidInput, inferred)"),
    ("update.status.", None, None, "Status is not validated against the enum: any value is stored as sent"),
    ("get.encoding.", None, None, "Encoding is not validated: any value or none answers 200"),
    ("upload.body.missing", None, None, "a missing SSHPublicKeyBody crashes with 500 (HTML)"),
    ("upload.body.", None, None, "the key body's length and characters are not validated: it is stored"),
    ("upload.duplicate.", None, None, "the same key material is accepted twice for one user (no DuplicateSSHPublicKey)"),
    ("upload.limit.", None, None, "no quota: a sixth key is accepted (AWS: 409 LimitExceeded)"),
    ("upload.key.", None, None, "the key body is not parsed: malformed, short, non-RSA and non-key bodies are all accepted"),
    ("user.create.duplicate", None, None, "says 'User X already exists' (AWS, recorded: 'User with name X already exists.')"),
    ("user.create.bad_name", None, None, "CreateUser does not validate the user name's characters"),
    ("user.delete.with_keys", None, None, "a user with SSH keys is deleted (AWS: 409 DeleteConflict) and the keys vanish with it"),
    ("", "messages.message", "SSH Public Key with id", "says 'The SSH Public Key with id X cannot be found' (AWS, recorded: 'The Public Key with id X cannot be found.')"),
    ("", None, "NoSuchEntity", "member values are not validated (length, pattern, presence): invalid ones are looked up and answer 404 NoSuchEntity"),
    ("", "codes.status", "404", "member values are not validated (length, pattern, presence): invalid ones are looked up and answer 404 NoSuchEntity"),
    ("", None, "cannot be found", "member values are not validated (length, pattern, presence): invalid ones are looked up and answer 404 NoSuchEntity"),
]


def reason(d):
    for prefix, check, needle, text in RULES:
        if not d["class"].startswith(prefix):
            continue
        if check is not None and d["check"] != check:
            continue
        if needle is not None and needle not in d["actual"] and needle not in d["expected"]:
            continue
        return text
    return "UNEXPLAINED: expected %s, got %s" % (d["expected"][:120], d["actual"][:120])


def main():
    matrix = json.load(open(sys.argv[1]))
    name = sys.argv[2]
    run = next(t for t in matrix["targets"] if t["name"] == name)
    label = "%s %s" % (name, run.get("version", "")) if run.get("version") else name
    known = {}
    if len(sys.argv) > 3:
        with open(sys.argv[3], "rb") as f:
            for e in tomllib.load(f).get("divergence", []):
                known[(e["class"], e["check"])] = e["reason"]
    entries = {}
    for d in run["report"]["divergences"]:
        key = (d["class"], d["check"])
        entries[key] = known.get(key) or reason(d)
    print("# Known divergences of %s from real AWS, keyed by (case class, check)." % label)
    print("# A run against it fails on a divergence not listed here and on a listed one that")
    print("# no longer occurs. Drafted by scripts/baseline-reasons.py from a matrix's JSON")
    print("# report; every reason was read against the run's expected and actual answers.")
    print()
    print('target = "%s"' % label)
    for (cls, check), text in sorted(entries.items()):
        print()
        print("[[divergence]]")
        print('class = "%s"' % cls)
        print('check = "%s"' % check)
        print("reason = %s" % json.dumps(text))


main()
