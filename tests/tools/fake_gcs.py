#!/usr/bin/env python3
"""fake_gcs - a small, honest GCS stand-in for the tests (stdlib + the openssl command).

One port on 127.0.0.1 serves:
  - the XML API, path-style, on the buckets given with --bucket: PUT object (Content-MD5
    checked; with x-goog-copy-source: /BUCKET/OBJECT a server-side copy, counted in
    /__fake/state), GET with Range, HEAD, and the multipart upload (POST ?uploads, PUT
    ?partNumber=N&uploadId=U, POST ?uploadId=U with CompleteMultipartUpload, DELETE
    ?uploadId=U), and the listing of open multipart uploads (GET /BUCKET?uploads with
    prefix, key-marker, upload-id-marker and max-uploads; ordered by key, then upload id;
    IsTruncated with NextKeyMarker / NextUploadIdMarker past max-uploads, at most 1,000 a
    page). Objects live in memory; an object appears only at PUT or Complete.
    Every request needs "Authorization: Bearer T" with a token this server issued and
    that has not expired; buckets named with --public accept anonymous requests.
  - POST /token: the OAuth token endpoint. grant_type jwt-bearer: the assertion's RS256
    signature is verified with --pubkey (openssl dgst -verify), and iss (--email), aud
    (this URL), scope (devstorage) and exp are checked. grant_type token-exchange (STS):
    the subject_token must equal the contents of --subject-token-file and the audience
    --audience.
  - GET /computeMetadata/v1/instance/service-accounts/default/token: the metadata
    server (needs "Metadata-Flavor: Google").
  - Generations: every write of an object gives it a new generation (x-goog-generation on
    the PUT, complete, GET and HEAD replies). "x-goog-if-generation-match: G" on a PUT
    (upload or copy) or on the complete of a multipart upload makes the write succeed only
    if the object's generation is G (0: no object is there), checked and written under one
    lock; else 412 PreconditionFailed and nothing changes. That header is how the XML API
    takes the JSON API's ifGenerationMatch; the query parameter ifGenerationMatch (a JSON
    API name) is answered 400 here, a tripwire so that a client which sends it instead of
    the header (and would be overwriting) fails loudly. The header on other requests (a
    part, initiate) is not modelled: 501 NotImplemented.
  - Custom metadata: x-goog-meta-* headers of a PUT, or of the initiate of a multipart
    upload (for the object its complete makes), are kept with the object, returned by GET
    and HEAD, and carried by a server-side copy, as GCS does.
  - GET /__fake/state: JSON {"tokens": N, "open_uploads": N, "uploads": [{"bucket", "key",
    "upload_id", "parts"}] (the open ones, in listing order), "objects": {name: size},
    "copies": N, "preconditions_failed": N (412s given)};
    GET /__fake/object/BUCKET/KEY: an object's bytes.
Tokens live --ttl seconds (default 3600). Prints its port once it listens.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}   # token -> expiry
        self.issued = 0
        self.objects = {}  # (bucket, key) -> bytes
        self.uploads = {}  # id -> {"bucket", "key", "parts": {n: bytes}}
        self.copies = 0    # server-side copies (PUT with x-goog-copy-source)
        self.precondition_failures = 0  # 412s given for x-goog-if-generation-match
        self.gens = {}     # (bucket, key) -> generation of the live object
        self.meta = {}     # (bucket, key) -> {x-goog-meta-* header: value}
        self.next_gen = 1700000000000000

    def put(self, bucket, key, data, meta):
        """Stores an object under a new generation (caller holds the lock)."""
        self.objects[(bucket, key)] = data
        self.meta[(bucket, key)] = dict(meta)
        self.next_gen += 1
        self.gens[(bucket, key)] = self.next_gen
        return self.next_gen


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(pubkey, signed, sig):
    with tempfile.TemporaryDirectory() as d:
        dp, sp = os.path.join(d, "data"), os.path.join(d, "sig")
        open(dp, "wb").write(signed)
        open(sp, "wb").write(sig)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pubkey, "-signature", sp, dp],
                           capture_output=True)
        return r.returncode == 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    @property
    def st(self):
        return self.server.state

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", ctype="application/xml", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def custom_meta(self):
        """The request's x-goog-meta-* headers, names in lower case."""
        return {k.lower(): v for k, v in self.headers.items()
                if k.lower().startswith("x-goog-meta-")}

    def error(self, status, code, msg):
        body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
                f"<Message>{msg}</Message></Error>").encode()
        self.reply(status, body)

    def json_reply(self, status, obj):
        self.reply(status, json.dumps(obj).encode(), "application/json")

    # ---- tokens -------------------------------------------------------------------
    def issue(self):
        tok = "ya29.fake-" + secrets.token_hex(16)
        with self.st.lock:
            self.st.tokens[tok] = time.time() + self.st.args.ttl
            self.st.issued += 1
        self.json_reply(200, {"access_token": tok, "expires_in": self.st.args.ttl,
                              "token_type": "Bearer"})

    def check_jwt(self, jwt):
        a = self.st.args
        try:
            h, c, s = jwt.split(".")
            header, claims = json.loads(b64url_decode(h)), json.loads(b64url_decode(c))
        except Exception:
            return "malformed assertion"
        if header.get("alg") != "RS256":
            return "alg is not RS256"
        if not verify_rs256(a.pubkey, f"{h}.{c}".encode(), b64url_decode(s)):
            return "bad signature"
        port = self.server.server_address[1]
        if claims.get("aud") != f"http://127.0.0.1:{port}/token":
            return "wrong aud"
        if claims.get("iss") != a.email:
            return "wrong iss"
        if "devstorage" not in claims.get("scope", ""):
            return "no storage scope"
        now = time.time()
        if not claims.get("iat", 0) - 60 <= now <= claims.get("exp", 0):
            return "expired or not yet valid"
        return None

    def token_endpoint(self):
        form = dict(urllib.parse.parse_qsl(self.body().decode()))
        grant = form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" and self.st.args.pubkey:
            why = self.check_jwt(form.get("assertion", ""))
        elif grant == "urn:ietf:params:oauth:grant-type:token-exchange" and \
                self.st.args.subject_token_file:
            want = open(self.st.args.subject_token_file).read().strip()
            why = None if form.get("subject_token") == want else "bad subject token"
            if not why and form.get("audience") != self.st.args.audience:
                why = "wrong audience"
        else:
            why = "unsupported grant"
        if why:
            return self.json_reply(400, {"error": "invalid_grant", "error_description": why})
        self.issue()

    def authorized(self, bucket):
        if bucket in self.st.args.public:
            return True
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        with self.st.lock:
            exp = self.st.tokens.get(auth[7:])
        return exp is not None and exp > time.time()

    # ---- XML API ------------------------------------------------------------------
    def split(self):
        u = urllib.parse.urlsplit(self.path)
        parts = u.path.lstrip("/").split("/", 1)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        return parts[0], key, q

    def md5_ok(self, data):
        want = self.headers.get("Content-MD5")
        return want is None or want == base64.b64encode(hashlib.md5(data).digest()).decode()

    def object_op(self):
        bucket, key, q = self.split()
        data = self.body() if self.command in ("PUT", "POST") else b""
        if bucket not in self.st.args.bucket:
            return self.error(404, "NoSuchBucket", "The specified bucket does not exist.")
        if not self.authorized(bucket):
            return self.error(401 if "Authorization" not in self.headers else 403,
                              "AccessDenied", "Access denied.")
        if not key:
            if self.command == "GET" and "uploads" in q:
                return self.list_uploads(bucket, q)
            return self.error(400, "InvalidArgument", "No object name.")
        if not self.md5_ok(data):
            return self.error(400, "BadDigest", "The Content-MD5 you specified did not match.")
        if self.unmodelled_precondition(q):
            return
        m = getattr(self, "op_" + self.command.lower())
        m(bucket, key, q, data)

    def list_uploads(self, bucket, q):
        """GET /BUCKET?uploads: the open multipart uploads, as GCS lists them."""
        prefix, kmark, imark = q.get("prefix", ""), q.get("key-marker", ""), q.get("upload-id-marker", "")
        try:
            most = min(int(q.get("max-uploads", "1000")), 1000)
        except ValueError:
            return self.error(400, "InvalidArgument", "Invalid max-uploads.")
        if most < 0:
            return self.error(400, "InvalidArgument", "Invalid max-uploads.")
        with self.st.lock:
            ups = sorted((u["key"], uid) for uid, u in self.st.uploads.items()
                         if u["bucket"] == bucket)
        # key-marker alone: keys after it; with upload-id-marker: that key's later ids too
        ups = [(k, i) for k, i in ups if k.startswith(prefix) and
               (not kmark or k > kmark or (imark and k == kmark and i > imark))]
        page, truncated = ups[:most], len(ups) > most
        body = ["<?xml version='1.0' encoding='UTF-8'?><ListMultipartUploadsResult "
                "xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>",
                f"<Bucket>{escape(bucket)}</Bucket><KeyMarker>{escape(kmark)}</KeyMarker>"
                f"<UploadIdMarker>{escape(imark)}</UploadIdMarker>"]
        if truncated and page:
            body.append(f"<NextKeyMarker>{escape(page[-1][0])}</NextKeyMarker>"
                        f"<NextUploadIdMarker>{escape(page[-1][1])}</NextUploadIdMarker>")
        if prefix:
            body.append(f"<Prefix>{escape(prefix)}</Prefix>")
        body.append(f"<MaxUploads>{most}</MaxUploads>"
                    f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        for k, i in page:
            body.append(f"<Upload><Key>{escape(k)}</Key><UploadId>{escape(i)}</UploadId>"
                        f"<StorageClass>STANDARD</StorageClass>"
                        f"<Initiated>2024-01-01T00:00:00.000Z</Initiated></Upload>")
        body.append("</ListMultipartUploadsResult>")
        self.reply(200, "".join(body).encode())

    # ---- preconditions (x-goog-if-generation-match) ---------------------------------
    def precondition_holds(self, bucket, key):
        """Whether the write may happen (caller holds the lock)."""
        want = self.headers.get("x-goog-if-generation-match")
        if want is None:
            return True
        if want == "0":
            return (bucket, key) not in self.st.objects
        return str(self.st.gens.get((bucket, key))) == want

    def unmodelled_precondition(self, q):
        """Answers (and returns True) what this fake does not model, rather than ignore it."""
        if "ifGenerationMatch" in q:
            self.error(400, "InvalidArgument", "ifGenerationMatch is a JSON API parameter; "
                       "the XML API takes x-goog-if-generation-match (fake_gcs tripwire).")
            return True
        gen = self.headers.get("x-goog-if-generation-match")
        if gen is None:
            return False
        whole = self.command == "PUT" and "uploadId" not in q
        complete = self.command == "POST" and "uploadId" in q
        if not gen.isdigit() or not (whole or complete):
            self.error(501, "NotImplemented", "fake_gcs models x-goog-if-generation-match only "
                       "on a PUT of a whole object and on a complete.")
            return True
        return False

    def precondition_failed(self):
        """The 412 of a create-only write that met an object (caller holds no lock)."""
        with self.st.lock:
            self.st.precondition_failures += 1
        self.error(412, "PreconditionFailed",
                   "At least one of the pre-conditions you specified did not hold.")

    def op_put(self, bucket, key, q, data):
        if "uploadId" in q:
            with self.st.lock:
                up = self.st.uploads.get(q["uploadId"])
                if not up:
                    return self.error(404, "NoSuchUpload", "No such upload.")
                up["parts"][int(q["partNumber"])] = data
            etag = '"%s"' % hashlib.md5(data).hexdigest()
            return self.reply(200, headers={"ETag": etag})
        source = self.headers.get("x-goog-copy-source")
        if source is not None:
            return self.copy_object(bucket, key, source)
        with self.st.lock:
            refused = not self.precondition_holds(bucket, key)
            if not refused:
                gen = self.st.put(bucket, key, data, self.custom_meta())
        if refused:
            return self.precondition_failed()
        self.reply(200, headers={"ETag": '"%s"' % hashlib.md5(data).hexdigest(),
                                 "x-goog-generation": str(gen)})

    def copy_object(self, bucket, key, source):
        """PUT with x-goog-copy-source: /BUCKET/OBJECT (a server-side copy)."""
        sb, _, sk = urllib.parse.unquote(source).lstrip("/").partition("/")
        if sb not in self.st.args.bucket or not self.authorized(sb):
            return self.error(403, "AccessDenied", "Access denied to the copy source.")
        with self.st.lock:
            data = self.st.objects.get((sb, sk))
            refused = not self.precondition_holds(bucket, key)
            if data is not None and not refused:
                self.st.put(bucket, key, data, self.st.meta.get((sb, sk), {}))
                self.st.copies += 1
        if data is None:
            return self.error(404, "NoSuchKey", "The copy source does not exist.")
        if refused:
            return self.precondition_failed()
        etag = '"%s"' % hashlib.md5(data).hexdigest()
        body = (f"<?xml version='1.0' encoding='UTF-8'?><CopyObjectResult><ETag>{etag}</ETag>"
                f"</CopyObjectResult>").encode()
        self.reply(200, body)

    def op_post(self, bucket, key, q, data):
        if "uploads" in q:
            uid = secrets.token_hex(12)
            with self.st.lock:
                self.st.uploads[uid] = {"bucket": bucket, "key": key, "parts": {},
                                        "meta": self.custom_meta()}
            body = (f"<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult "
                    f"xmlns='http://s3.amazonaws.com/doc/2006-03-01/'><Bucket>{bucket}</Bucket>"
                    f"<Key>{key}</Key><UploadId>{uid}</UploadId>"
                    f"</InitiateMultipartUploadResult>").encode()
            return self.reply(200, body)
        if "uploadId" in q:
            nums = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", data)]
            etags = [e.decode().replace("&quot;", '"') for e in re.findall(rb"<ETag>([^<]*)</ETag>", data)]
            with self.st.lock:
                up = self.st.uploads.get(q["uploadId"])
                if not up:
                    return self.error(404, "NoSuchUpload", "No such upload.")
                if nums != list(range(1, len(nums) + 1)) or any(
                        n not in up["parts"] or etags[i] != '"%s"' % hashlib.md5(up["parts"][n]).hexdigest()
                        for i, n in enumerate(nums)):
                    return self.error(400, "InvalidPart", "Parts do not match.")
                refused = not self.precondition_holds(bucket, key)
                if not refused:
                    obj = b"".join(up["parts"][n] for n in nums)
                    gen = self.st.put(bucket, key, obj, up["meta"])
                    del self.st.uploads[q["uploadId"]]
            if refused:
                return self.precondition_failed()
            body = (f"<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult>"
                    f"<Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>\"{hashlib.md5(obj).hexdigest()}-{len(nums)}\"</ETag>"
                    f"</CompleteMultipartUploadResult>").encode()
            return self.reply(200, body, headers={"x-goog-generation": str(gen)})
        self.error(400, "InvalidArgument", "Unsupported POST.")

    def op_delete(self, bucket, key, q, data):
        with self.st.lock:
            if "uploadId" in q:
                if self.st.uploads.pop(q["uploadId"], None) is None:
                    return self.error(404, "NoSuchUpload", "No such upload.")
            elif self.st.objects.pop((bucket, key), None) is None:
                return self.error(404, "NoSuchKey", "No such object.")
            else:
                self.st.gens.pop((bucket, key), None)
                self.st.meta.pop((bucket, key), None)
        self.reply(204)

    def op_get(self, bucket, key, q, data):
        with self.st.lock:
            obj = self.st.objects.get((bucket, key))
            gen = self.st.gens.get((bucket, key))
            meta = dict(self.st.meta.get((bucket, key), {}))
        if obj is None:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        etag = '"%s"' % hashlib.md5(obj).hexdigest()
        hdr = dict(meta, **{"ETag": etag, "x-goog-generation": str(gen)})
        rng = self.headers.get("Range")
        if self.command == "GET" and rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(obj) - 1, len(obj) - 1)
            if start >= len(obj):
                return self.reply(416, b"", headers={"Content-Range": f"bytes */{len(obj)}"})
            return self.reply(206, obj[start:end + 1], "application/octet-stream",
                              dict(hdr, **{"Content-Range": f"bytes {start}-{end}/{len(obj)}"}))
        self.reply(200, obj, "application/octet-stream", hdr)

    op_head = op_get

    # ---- dispatch -----------------------------------------------------------------
    def route(self):
        p = urllib.parse.urlsplit(self.path).path
        if p == "/token" and self.command == "POST":
            return self.token_endpoint()
        if p == "/computeMetadata/v1/instance/service-accounts/default/token":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403, b"Missing Metadata-Flavor:Google header.", "text/plain")
            return self.issue()
        if p == "/__fake/state":
            with self.st.lock:
                objs = {f"{b}/{k}": len(v) for (b, k), v in self.st.objects.items()}
                ups = sorted(({"bucket": u["bucket"], "key": u["key"], "upload_id": uid,
                               "parts": len(u["parts"])} for uid, u in self.st.uploads.items()),
                             key=lambda u: (u["bucket"], u["key"], u["upload_id"]))
                return self.json_reply(200, {"tokens": self.st.issued, "objects": objs,
                                             "open_uploads": len(ups), "uploads": ups,
                                             "copies": self.st.copies,
                                             "preconditions_failed":
                                                 self.st.precondition_failures})
        if p.startswith("/__fake/object/"):
            b, k = urllib.parse.unquote(p[len("/__fake/object/"):]).split("/", 1)
            with self.st.lock:
                obj = self.st.objects.get((b, k))
            return self.reply(200 if obj is not None else 404, obj or b"", "application/octet-stream")
        self.object_op()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = route


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bucket", action="append", default=[])
    ap.add_argument("--public", action="append", default=[])
    ap.add_argument("--pubkey")
    ap.add_argument("--email", default="ckptfs-test@example.iam.gserviceaccount.com")
    ap.add_argument("--subject-token-file")
    ap.add_argument("--audience", default="")
    ap.add_argument("--ttl", type=int, default=3600)
    args = ap.parse_args()
    args.bucket += args.public
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
