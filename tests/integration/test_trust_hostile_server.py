"""Hostile server replies (issue 5, SPEC 7): a tiny HTTP server of our own on 127.0.0.1
answers the daemon with huge or malformed headers, lying lengths and ranges, and S3 XML
that is malformed or carries entity expansion (billion laughs) or external entities, in
error, InitiateMultipartUpload and CompleteMultipartUpload replies. Each must give a
clear error (EIO under prev/, a failed `touch .save`, the error in .status), never wrong
data, never a read of a local file, and a daemon that stays up with bounded memory."""
import errno
import http.server
import os
import socketserver
import tarfile
import threading

from ckfs import MountTest, tree
from test_trust_faults import strict_tree

MIB = 1 << 20

BOMB = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
        + b"".join(b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                   for i in range(1, 10))
        + b"]>\n")
XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n')


def bomb(root, inner):
    return BOMB + b"<%s>%s</%s>" % (root, inner.replace(b"BOMB", b"&lol9;"), root)


class Hostile(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def raw(self, status_line, headers, body=b""):
        self.server.seen.append(f"{self.command} {self.path}")
        out = [status_line] + headers
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
        self.wfile.flush()
        self.close_connection = True

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 16)))

    def reply(self):
        self.body()
        mode, obj = self.server.mode, self.server.obj
        ok_obj = ["HTTP/1.1 200 OK", f"Content-Length: {len(obj)}", 'ETag: "e1"',
                  "Accept-Ranges: bytes"]
        if mode == "huge_header":
            return self.raw("HTTP/1.1 200 OK", ok_obj[1:] + ["X-Big: " + "a" * 200000],
                            obj if self.command == "GET" else b"")
        if mode == "many_headers":
            return self.raw("HTTP/1.1 200 OK", ok_obj[1:] + [f"X-H{i}: v" for i in range(20000)],
                            obj if self.command == "GET" else b"")
        if mode == "bad_length":
            return self.raw("HTTP/1.1 200 OK", ["Content-Length: 12abc", 'ETag: "e1"'], obj)
        if mode == "negative_length":
            return self.raw("HTTP/1.1 200 OK", ["Content-Length: -1", 'ETag: "e1"'], obj)
        if mode == "wrong_range":
            if self.command == "HEAD":
                return self.raw(*ok_obj[:1], ok_obj[1:])
            # a 206 that always claims and sends the object's first bytes
            return self.raw("HTTP/1.1 206 Partial Content",
                            [f"Content-Range: bytes 0-99/{len(obj)}", "Content-Length: 100",
                             'ETag: "e1"'], obj[:100])
        if mode == "garbage_range":
            if self.command == "HEAD":
                return self.raw(*ok_obj[:1], ok_obj[1:])
            return self.raw("HTTP/1.1 206 Partial Content",
                            ["Content-Range: bytes 99999999999999999999999-1/x",
                             "Content-Length: 10", 'ETag: "e1"'], b"x" * 10)
        if mode == "long_body":  # more bytes than announced
            return self.raw("HTTP/1.1 200 OK", [f"Content-Length: {len(obj)}", 'ETag: "e1"'],
                            obj + b"EXTRA" * 1000)
        if mode == "bad_status":
            return self.raw("HTTP/1.1 2000000000000 WHAT", ["Content-Length: 0"])
        # S3 modes: answer InitiateMultipartUpload, parts and Complete as configured
        if self.command == "POST" and "uploads" in self.path:
            body = self.server.initiate
        elif self.command == "POST":
            body = self.server.complete
        elif self.command == "PUT":
            return self.raw("HTTP/1.1 200 OK", ['ETag: "p1"', "Content-Length: 0"])
        elif self.command == "DELETE":
            return self.raw("HTTP/1.1 204 No Content", [])
        else:
            return self.raw("HTTP/1.1 404 Not Found", ["Content-Length: 0"])
        status = self.server.status
        return self.raw(status, ["Content-Type: application/xml", f"Content-Length: {len(body)}"],
                        body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = reply


class HostileServerTest(MountTest):
    def setUp(self):
        super().setUp()
        self.srv = Hostile(("127.0.0.1", 0), Handler)
        self.srv.seen = []
        self.srv.mode = "ok"
        self.srv.status = "HTTP/1.1 200 OK"
        self.srv.initiate = self.srv.complete = b""
        th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        th.start()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        src = os.path.dirname(self.path("srctree", "x"))
        with open(os.path.join(src, "a"), "wb") as f:
            f.write(os.urandom(300000))
        arc = self.path("obj.tgz")
        with tarfile.open(arc, "w:gz") as t:
            t.add(os.path.join(src, "a"), arcname="a")
        with open(arc, "rb") as f:
            self.srv.obj = f.read()
        self.want = tree(src)

    def alive(self, m):
        self.assertIsNone(m.proc.poll(), "the daemon died")
        with open(f"/proc/{m.proc.pid}/status") as f:
            rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")][0]
        self.assertLess(rss, 256 * 1024, "the daemon's memory blew up")
        m.status()

    def test_hostile_replies_to_loads(self):
        outcomes = {}
        for mode in ("huge_header", "many_headers", "bad_length", "negative_length",
                     "wrong_range", "garbage_range", "long_body", "bad_status"):
            self.srv.mode = mode
            m = self.mount(self.path("dest", mode), [f"{self.url}/ck/obj.tgz"], name=mode)
            try:
                got = strict_tree(m.prev)
                self.assertEqual(got, self.want, f"{mode}: wrong data under prev/")
                outcomes[mode] = "recovered"
            except OSError as e:
                self.assertEqual(e.errno, errno.EIO, mode)
                st = m.status()["prev"]
                self.assertEqual(st["state"], "failed", f"{mode}: {st}")
                self.assertTrue(st["error"], mode)
                outcomes[mode] = "refused: " + st["error"][:90]
            self.alive(m)
            m.kill()
        print("\n" + "\n".join(f"  {k}: {v}" for k, v in outcomes.items()))
        # the tree is never empty when it loads, so "recovered" means the right data
        for mode in ("huge_header", "many_headers", "bad_length", "negative_length",
                     "wrong_range", "garbage_range", "bad_status"):
            self.assertTrue(outcomes[mode].startswith("refused"), f"{mode}: {outcomes[mode]}")

    def s3_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLYTE_AWS_"))}
        env.update(AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                   AWS_SECRET_ACCESS_KEY="secret-never-shown", AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", CKPTFS_S3_PART_SIZE="5M")
        return env

    def test_hostile_s3_xml(self):
        up = b"<UploadId>u1</UploadId>"
        cases = {
            "initiate: billion laughs": ("HTTP/1.1 200 OK",
                                         bomb(b"InitiateMultipartUploadResult", b"<UploadId>BOMB</UploadId>"), b""),
            "initiate: external entity": ("HTTP/1.1 200 OK",
                                          XXE + b"<InitiateMultipartUploadResult><UploadId>&x;</UploadId>"
                                          b"</InitiateMultipartUploadResult>", b""),
            "initiate: malformed": ("HTTP/1.1 200 OK", b"<InitiateMultipartUploadResult><UploadId>u1",
                                    b""),
            "initiate: no upload id": ("HTTP/1.1 200 OK", b"<InitiateMultipartUploadResult/>", b""),
            "initiate: huge upload id": ("HTTP/1.1 200 OK", b"<InitiateMultipartUploadResult><UploadId>"
                                         + b"u" * 200000 + b"</UploadId></InitiateMultipartUploadResult>", b""),
            "error: billion laughs": ("HTTP/1.1 403 Forbidden",
                                      bomb(b"Error", b"<Code>BOMB</Code><Message>BOMB</Message>"), b""),
            "complete: billion laughs": ("HTTP/1.1 200 OK",
                                         b"<InitiateMultipartUploadResult>" + up + b"</InitiateMultipartUploadResult>",
                                         bomb(b"CompleteMultipartUploadResult", b"<ETag>BOMB</ETag>")),
            "complete: malformed": ("HTTP/1.1 200 OK",
                                    b"<InitiateMultipartUploadResult>" + up + b"</InitiateMultipartUploadResult>",
                                    b"<CompleteMultipartUploadResult><ETag>"),
            "complete: error in 200 with entity": (
                "HTTP/1.1 200 OK",
                b"<InitiateMultipartUploadResult>" + up + b"</InitiateMultipartUploadResult>",
                XXE + b"<Error><Code>&x;</Code><Message>&x;</Message></Error>"),
        }
        m = self.mount("s3://bkt/ck", env=self.s3_env(), extra=["--compress", "store"])
        with open(os.path.join(m.save, "big"), "wb") as f:
            f.write(os.urandom(6 * MIB))
        results = {}
        for name, (status, initiate, complete) in cases.items():
            self.srv.status, self.srv.initiate, self.srv.complete = status, initiate, complete
            self.srv.mode = "s3"
            self.srv.seen.clear()
            rc = m.touch_save()
            self.alive(m)
            st = m.status()
            results[name] = (rc, (st["save"]["last"]["error"] or "")[:90])
            self.assertNotEqual(rc, 0, f"{name}: the save reported success")
            self.assertEqual(st["save"]["last"]["result"], "failed", name)
            text = str(st) + m.logtext()
            self.assertNotIn("root:x:0", text, f"{name}: a local file was read")
            self.assertNotIn("root:x:0", " ".join(self.srv.seen), f"{name}: XXE sent")
            self.assertNotIn("secret-never-shown", text)
            self.assertNotIn("lollollol", text, f"{name}: an entity was expanded")
        print("\n" + "\n".join(f"  {k}: rc {v[0]}, {v[1]}" for k, v in results.items()))
