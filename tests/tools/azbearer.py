#!/usr/bin/env python3
"""azbearer - Entra ID and IMDS stand-ins plus a bearer-checking gate in front of Azurite
(stdlib only), for the Azure workload-identity and managed-identity tests.

Azurite accepts OAuth only over https, so this server does what the storage service does
with a bearer token: it checks it and lets the request through. One port on 127.0.0.1:
  POST /TENANT/oauth2/v2.0/token  client credentials: grant_type client_credentials,
      client_id == --client-id, client_assertion_type jwt-bearer, client_assertion == the
      contents of --assertion-file (read at each request), scope storage.azure.com.
  GET /metadata/identity/oauth2/token  IMDS: needs "Metadata: true", api-version and
      resource=https://storage.azure.com/; expires_in is a string, as IMDS sends it.
  GET /__fake/state  {"tokens": N, "gated": N}
  anything else: blob traffic. Needs "Authorization: Bearer T" with a token issued here and
      x-ms-version >= 2017-11-09 (else 401/403 with an Azure error body); the request is
      then re-signed with Azurite's account key (tests/tools/azblob.py) and forwarded to
      127.0.0.1:--upstream.
Prints its port once it listens.
"""
import argparse
import http.client
import json
import os
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import azblob  # noqa: E402

HOP = {"host", "authorization", "connection", "keep-alive", "transfer-encoding", "expect"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", ctype="application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def issue(self, as_string=False):
        tok = "eyJ0eXAiOiJKV1Qi.fake-" + secrets.token_hex(16)
        st = self.server.st
        with st["lock"]:
            st["tokens"][tok] = True
            st["issued"] += 1
        ttl = self.server.args.ttl
        self.reply(200, json.dumps({"token_type": "Bearer", "access_token": tok,
                                    "expires_in": str(ttl) if as_string else ttl}).encode())

    def entra(self):
        a = self.server.args
        f = dict(urllib.parse.parse_qsl(self.body().decode()))
        with open(a.assertion_file) as fh:
            assertion = fh.read().strip()
        ok = (f.get("grant_type") == "client_credentials" and f.get("client_id") == a.client_id
              and f.get("client_assertion_type") ==
              "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
              and f.get("client_assertion") == assertion
              and f.get("scope") == "https://storage.azure.com/.default")
        if not ok:
            return self.reply(401, json.dumps({"error": "invalid_client",
                                               "error_codes": [700016]}).encode())
        self.issue()

    def imds(self, q):
        if self.headers.get("Metadata") != "true":
            return self.reply(400, json.dumps({"error": "invalid_request"}).encode())
        if q.get("resource") != "https://storage.azure.com/" or "api-version" not in q:
            return self.reply(400, json.dumps({"error": "invalid_resource"}).encode())
        self.issue(as_string=True)

    def azure_error(self, status, code):
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                f"<Message>{code}</Message></Error>").encode()
        self.reply(status, body, "application/xml", {"x-ms-error-code": code})

    def gate(self):
        st = self.server.st
        auth = self.headers.get("Authorization", "")
        with st["lock"]:
            known = auth.startswith("Bearer ") and auth[7:] in st["tokens"]
        if not known:
            self.body()
            return self.azure_error(401, "InvalidAuthenticationInfo")
        if self.headers.get("x-ms-version", "") < "2017-11-09":
            self.body()
            return self.azure_error(403, "AuthorizationPermissionMismatch")
        with st["lock"]:
            st["gated"] += 1
        data = self.body()
        u = urllib.parse.urlsplit(self.path)
        h = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if self.command in ("PUT", "POST"):
            h["Content-Length"] = str(len(data))
        h["Authorization"] = azblob.authorization(self.command, u.path, u.query, h)
        c = http.client.HTTPConnection("127.0.0.1", self.server.args.upstream, timeout=60)
        c.request(self.command, self.path, body=data if self.command in ("PUT", "POST") else None,
                  headers=h)
        r = c.getresponse()
        out = r.read()
        c.close()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", r.getheader("Content-Length") or str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def route(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if self.command == "POST" and u.path.endswith("/oauth2/v2.0/token"):
            return self.entra()
        if u.path == "/metadata/identity/oauth2/token":
            return self.imds(q)
        if u.path == "/__fake/state":
            st = self.server.st
            return self.reply(200, json.dumps({"tokens": st["issued"],
                                               "gated": st["gated"]}).encode())
        self.gate()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = route


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--client-id", default="00000000-0000-0000-0000-00000000c1d0")
    ap.add_argument("--assertion-file", required=True)
    ap.add_argument("--ttl", type=int, default=3600)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.args = args
    srv.st = {"lock": threading.Lock(), "tokens": {}, "issued": 0, "gated": 0}
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
