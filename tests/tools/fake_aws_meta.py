#!/usr/bin/env python3
"""fake_aws_meta.py - a fake EC2 instance metadata service (IMDSv2) and container
credentials endpoint on 127.0.0.1, for the credential tests. Python stdlib only.

    python3 fake_aws_meta.py [--port P] [--expiry SECS] [--container-auth TOKEN]

Prints its port on stdout once it accepts connections. See tests/tools/README.md.
"""
import argparse
import datetime
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "ck-test-role"
TOKEN_PATH = "/latest/api/token"
ROLE_PATH = "/latest/meta-data/iam/security-credentials/"


class State:
    def __init__(self, expiry, container_auth):
        self.lock = threading.Lock()
        self.expiry = expiry
        self.container_auth = container_auth
        self.mode = "ok"  # ok | garbage | no-expiration | fail-code | status=NNN
        self.tokens = set()
        self.counts = {"token": 0, "role": 0, "imds_creds": 0, "container": 0, "denied": 0}
        self.serial = 0

    def creds(self, prefix):
        with self.lock:
            self.serial += 1
            n = self.serial
            expiry = self.expiry
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expiry)
        return {
            "Code": "Success",
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIA%s%04d" % (prefix, n),
            "SecretAccessKey": "%s-secret-%d" % (prefix.lower(), n),
            "Token": "%s-session-token-%d" % (prefix.lower(), n),
            "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "LastUpdated": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main()

    def log_message(self, fmt, *args):  # quiet: the tests read counts instead
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode() if n else ""

    def count(self, key):
        with self.state.lock:
            self.state.counts[key] += 1

    def creds_reply(self, prefix):
        s = self.state
        with s.lock:
            mode = s.mode
        if mode.startswith("status="):
            return self.reply(int(mode[7:]), "failure")
        c = s.creds(prefix)
        if mode == "garbage":
            return self.reply(200, '{"AccessKeyId": "x", "SecretAccessKey": ', "application/json")
        if mode == "no-expiration":
            del c["Expiration"]
        if mode == "fail-code":
            c["Code"] = "AssumeRoleUnauthorizedAccess"
        self.reply(200, json.dumps(c), "application/json")

    # ---- control -----------------------------------------------------------------------
    def control(self):
        s = self.state
        what = self.path[len("/__ctl/"):]
        if self.command == "GET" and what == "counts":
            with s.lock:
                return self.reply(200, json.dumps(s.counts), "application/json")
        value = self.body().strip()
        with s.lock:
            if what == "reset":
                s.mode, s.tokens = "ok", set()
                s.counts = {k: 0 for k in s.counts}
            elif what == "expiry":
                s.expiry = int(value)
            elif what == "container-auth":
                s.container_auth = value
            elif what == "mode":
                s.mode = value
            else:
                return self.reply(404, "unknown control")
        self.reply(200, "ok")

    # ---- IMDSv2 ------------------------------------------------------------------------
    def imds_token(self):
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.body()
        if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.reply(400, "missing or bad X-aws-ec2-metadata-token-ttl-seconds")
        tok = "imds-" + secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens.add(tok)
        self.count("token")
        self.reply(200, tok)

    def imds_authorized(self):
        tok = self.headers.get("X-aws-ec2-metadata-token")
        with self.state.lock:
            ok = tok in self.state.tokens
        if not ok:
            self.count("denied")
            self.reply(401, "")
        return ok

    # ---- dispatch ----------------------------------------------------------------------
    def do_PUT(self):
        if self.path.startswith("/__ctl/"):
            return self.control()
        if self.path == TOKEN_PATH:
            return self.imds_token()
        self.body()
        self.reply(405, "")

    def do_POST(self):  # nothing is served by POST: an "STS" that is not one
        self.body()
        self.reply(404, "")

    def do_GET(self):
        if self.path.startswith("/__ctl/"):
            return self.control()
        if self.path == ROLE_PATH:
            if self.imds_authorized():
                self.count("role")
                self.reply(200, ROLE)
            return
        if self.path == ROLE_PATH + ROLE:
            if self.imds_authorized():
                self.count("imds_creds")
                self.creds_reply("IMDS")
            return
        if self.path.startswith(ROLE_PATH):
            return self.reply(404, "")
        if self.path.startswith("/container/"):
            with self.state.lock:
                want = self.state.container_auth
            if want and self.headers.get("Authorization") != want:
                self.count("denied")
                return self.reply(403, '{"Message": "bad authorization"}', "application/json")
            self.count("container")
            return self.creds_reply("CONT")
        self.reply(404, "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--expiry", type=int, default=3600, help="credential lifetime, seconds")
    ap.add_argument("--container-auth", default="", help="required Authorization value")
    a = ap.parse_args()
    Handler.state = State(a.expiry, a.container_auth)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
