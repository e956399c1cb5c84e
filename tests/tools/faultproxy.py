#!/usr/bin/env python3
"""faultproxy - a fault-injecting HTTP/1.1 proxy for tests (stdlib only).

Listens on 127.0.0.1, forwards each request to an upstream 127.0.0.1:PORT, and applies
the next step of a fault plan to it. See tests/tools/README.md for the plan language and
the control endpoint. Prints its port on stdout (one line) once it accepts connections;
logs one line per request to --log (default stderr).
"""
import argparse
import base64
import http.client
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time

HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
       "trailer", "transfer-encoding", "upgrade", "expect"}
MAX_HEADERS = 64 * 1024
# S3-style error replies: step -> (status, Code). error200 is S3's "200 OK" whose body is
# an <Error> (CompleteMultipartUpload may answer so).
S3_ERRORS = {"slowdown": (503, "SlowDown"), "reqtimeout": (400, "RequestTimeout"),
             "error200": (200, "InternalError"), "baddigest": (400, "BadDigest")}
CHUNK = 64 * 1024
# How long hold=N waits for the other requests (below ckptfs's 30 s stall timeout).
HOLD_TIMEOUT = 20.0


def parse_step(text):
    """'reset@1000*2' -> ({'kind': 'reset', 'arg': None, 'at': 1000}, 2)."""
    m = re.fullmatch(r"([a-z][a-z0-9-]*)(?:=([0-9.]+))?(?:@([0-9]+))?(?:\*([0-9]+|inf))?", text.strip())
    if not m:
        raise ValueError(f"bad plan step: {text!r}")
    kind, arg, at, count = m.groups()
    if kind not in ("pass", "status", "retry-after", "reset", "truncate", "stall", "shift",
                    "norange", "hold", "gate", "lost", "after", "delay", "flip",
                    "flipreply", "badsum", "replaced") + tuple(S3_ERRORS):
        raise ValueError(f"unknown fault: {kind!r}")
    if kind in ("status", "retry-after", "stall", "shift", "hold", "gate", "after",
                "delay") and arg is None:
        raise ValueError(f"{kind} needs =VALUE")
    if kind == "hold" and (not arg.isdigit() or int(arg) < 2):
        raise ValueError("hold needs =N, N >= 2")
    times = -1 if count == "inf" else int(count or 1)
    return {"kind": kind, "arg": arg, "at": int(at) if at else None, "text": text.strip()}, times


def flip_bit(data, at):
    """data with the lowest bit of byte at flipped (nothing if data is shorter)."""
    if at >= len(data):
        return data
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def parse_plan(text):
    plan = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        plan.append(list(parse_step(part)))
    return plan


class State:
    def __init__(self, upstream, plan, log):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.released = threading.Condition(self.lock)
        self.releases = 0  # PUT /__fault/release count: ends the stalls running then
        self.plan = plan
        # a compiled regex: only requests whose "METHOD TARGET[ Range: V]" it finds take steps
        self.match = None
        self.records = []
        self.log = log
        self.barriers = {}  # hold=N -> threading.Barrier(N)

    def hold(self, n):
        """Waits until n requests wait here together (True), or HOLD_TIMEOUT (False)."""
        with self.lock:
            b = self.barriers.get(n)
            if b is None or b.broken:
                b = self.barriers[n] = threading.Barrier(n)
        try:
            b.wait(HOLD_TIMEOUT)
            return True
        except threading.BrokenBarrierError:
            return False

    def next_step(self, method, target, rng=None):
        """The plan's next step for this request (pass if it does not match: the match
        regex searches "METHOD TARGET", plus " Range: VALUE" when the request has one)."""
        with self.lock:
            what = f"{method} {target}" + (f" Range: {rng}" if rng else "")
            if self.match and not self.match.search(what):
                return {"kind": "pass", "arg": None, "at": None, "text": "pass"}
            while self.plan and self.plan[0][1] == 0:
                self.plan.pop(0)
            if not self.plan:
                return {"kind": "pass", "arg": None, "at": None, "text": "pass"}
            step = self.plan[0]
            if step[1] > 0:
                step[1] -= 1
            return step[0]

    def stall(self, secs):
        """Sleeps secs, or less if PUT /__fault/release comes meanwhile."""
        with self.released:
            n = self.releases
            self.released.wait_for(lambda: self.releases != n, secs)

    def release(self):
        with self.released:
            self.releases += 1
            self.released.notify_all()

    def begin(self, rec):
        """Adds rec to the log at once, so /__fault/log shows requests still running."""
        with self.lock:
            rec["n"] = len(self.records) + 1
            self.records.append(rec)

    def finish(self, rec):
        with self.lock:
            line = json.dumps(rec)
        print(line, file=self.log, flush=True)


class Handler(socketserver.StreamRequestHandler):
    def read_request(self):
        line = self.rfile.readline(8192).decode("latin-1")
        if not line:
            return None
        method, target, _ = line.split(" ", 2)
        headers, total = [], 0
        while True:
            h = self.rfile.readline(8192).decode("latin-1")
            total += len(h)
            if total > MAX_HEADERS:
                raise ValueError("request headers too large")
            if h in ("\r\n", "\n", ""):
                break
            name, _, value = h.partition(":")
            headers.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in headers}
        if lower.get("expect", "").lower() == "100-continue":
            self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in lower.get("transfer-encoding", "").lower():
            body = self.read_chunked()  # forwarded with the Content-Length it turned out to have
        else:
            length = int(lower.get("content-length", "0"))
            body = self.rfile.read(length) if length else b""
        return method, target, headers, body

    def read_chunked(self):
        parts = []
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(16)  # the CRLF after the chunk

    def handle(self):
        st = self.server.state
        try:
            req = self.read_request()
        except (ValueError, OSError) as e:
            print(f"faultproxy: bad request: {e}", file=st.log, flush=True)
            return
        if req is None:
            return
        method, target, headers, body = req
        if target.startswith("/__fault/"):
            self.control(method, target, body)
            return
        rng = next((v for k, v in headers if k.lower() == "range"), None)
        step = st.next_step(method, target, rng)
        path, _, query = target.partition("?")
        sums = {k.lower(): v for k, v in headers if k.lower().startswith("x-amz-checksum-")}
        rec = {"method": method, "path": path, "query": query, "range": rng,
               "bytes_in": len(body), "checksums": sums, "action": step["text"],
               "t0": time.time()}
        st.begin(rec)
        if step["kind"] == "hold":
            held = st.hold(int(step["arg"]))
            with st.lock:
                rec["held"] = held
        try:
            status = self.apply(step, method, target, headers, body)
            with st.lock:
                rec["status"] = status
        except OSError as e:
            with st.lock:
                rec["error"] = str(e)
        with st.lock:
            rec["t1"] = time.time()
        st.finish(rec)

    def control(self, method, target, body):
        st = self.server.state
        code, out = 200, b""
        try:
            if target == "/__fault/plan" and method in ("PUT", "POST"):
                plan = parse_plan(body.decode())
                with st.lock:
                    st.plan = plan
            elif target == "/__fault/log" and method == "GET":
                with st.lock:
                    out = "".join(json.dumps(r) + "\n" for r in st.records).encode()
            elif target == "/__fault/release" and method in ("PUT", "POST"):
                st.release()
            elif target == "/__fault/match" and method in ("PUT", "POST"):
                text = body.decode()
                with st.lock:
                    st.match = re.compile(text) if text else None
            elif target == "/__fault/reset" and method in ("PUT", "POST"):
                with st.lock:
                    st.plan, st.records, st.match = [], [], None
            else:
                code, out = 404, b"unknown control request\n"
        except ValueError as e:
            code, out = 400, (str(e) + "\n").encode()
        self.send_simple(code, out, {})

    def send_simple(self, code, body, extra, head_only=False):
        reason = http.client.responses.get(code, "")
        lines = [f"HTTP/1.1 {code} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.request.sendall(data if head_only else data + body)

    def apply(self, step, method, target, headers, body):
        kind, arg = step["kind"], step["arg"]
        if kind == "status":
            code = int(arg)
            self.send_simple(code, f"fault injected: HTTP {code}\n".encode(), {},
                             method == "HEAD")
            return code
        if kind in S3_ERRORS:
            code, s3code = S3_ERRORS[kind]
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{s3code}</Code>'
                   f'<Message>fault injected: {s3code}</Message></Error>').encode()
            self.send_simple(code, xml, {"Content-Type": "application/xml"}, method == "HEAD")
            return code
        if kind == "gate":
            # the whole request has arrived; answer only after PUT /__fault/release (or a
            # minute): a test acts while the client waits, then the request fails
            self.server.state.stall(60.0)
            code = int(arg)
            self.send_simple(code, f"fault injected: HTTP {code} after a gate\n".encode(), {},
                             method == "HEAD")
            return code
        if kind == "retry-after":
            self.send_simple(429, b"fault injected: slow down\n", {"Retry-After": arg},
                             method == "HEAD")
            return 429
        if kind in ("lost", "after"):
            # the server applies the request; its reply never reaches the client (lost: the
            # connection is reset) or is replaced by an error (after=CODE)
            status, _, _ = self.upstream_request(method, target, headers, body)
            if kind == "lost":
                self.fault_end("reset", None)
                return status
            code = int(arg)
            self.send_simple(code, f"fault injected: HTTP {code} after the server's {status}\n"
                             .encode(), {}, method == "HEAD")
            return code
        if kind == "delay":
            time.sleep(float(arg))  # a slow server: nothing at all is sent meanwhile
        if kind == "flip":
            body = flip_bit(body, step["at"] or 0)
        headers = self.rewrite_range(kind, arg, headers)
        return self.forward(step, method, target, headers, body)

    def upstream_request(self, method, target, headers, body):
        """Sends the request upstream and reads the whole reply: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.state.upstream, timeout=60)
        fwd = {k: v for k, v in headers if k.lower() not in HOP and k.lower() != "content-length"}
        conn.request(method, target, body=body if method in ("PUT", "POST") else None,
                     headers=fwd)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), data

    @staticmethod
    def rewrite_range(kind, arg, headers):
        if kind == "norange":
            return [(k, v) for k, v in headers if k.lower() != "range"]
        if kind != "shift":
            return headers
        out = []
        for k, v in headers:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", v) if k.lower() == "range" else None
            if m:
                a = int(m.group(1)) + int(arg)
                b = m.group(2) and str(max(int(m.group(2)), a))
                v = f"bytes={a}-{b}"
            out.append((k, v))
        return out

    def forward(self, step, method, target, headers, body):
        st = self.server.state
        conn = http.client.HTTPConnection("127.0.0.1", st.upstream, timeout=60)
        fwd = {k: v for k, v in headers if k.lower() not in HOP and k.lower() != "content-length"}
        conn.request(method, target, body=body if method in ("PUT", "POST") else None,
                     headers=fwd)
        resp = conn.getresponse()
        rh = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
        if step["kind"] in ("badsum", "replaced"):
            rh = self.wrong_sums(rh, headers)
        if step["kind"] == "replaced":
            rh = self.other_etag(rh)
        has_len = any(k.lower() == "content-length" for k, _ in rh)
        pending = b"" if has_len or method == "HEAD" else resp.read()
        if not has_len and method != "HEAD":
            rh.append(("Content-Length", str(len(pending))))
        lines = [f"HTTP/1.1 {resp.status} {resp.reason}"] + [f"{k}: {v}" for k, v in rh]
        lines.append("Connection: close")
        self.request.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if method != "HEAD":
            self.send_body(step, resp, pending)
        conn.close()
        return resp.status

    @staticmethod
    def wrong_sums(reply, request):
        """The reply with one bit changed in each of its checksum values (x-amz-checksum-*,
        not -type, -algorithm or -mode), and those the request carried added so changed
        where the reply names none: the store saying it received or holds other bytes."""
        def is_sum(k):
            k = k.lower()
            return k.startswith("x-amz-checksum-") and not k.endswith(("-type", "-algorithm",
                                                                       "-mode"))

        def flip(v):
            raw = base64.b64decode(v)
            return base64.b64encode(bytes([raw[0] ^ 1]) + raw[1:]).decode()
        out = [(k, flip(v) if is_sum(k) else v) for k, v in reply]
        named = {k.lower() for k, _ in reply}
        out += [(k, flip(v)) for k, v in request if is_sum(k) and k.lower() not in named]
        return out

    @staticmethod
    def other_etag(reply):
        """The reply with its ETag's first hex digit changed: another object in its place."""
        def other(v):
            i = v.find('"') + 1
            return v[:i] + ("1" if v[i:i + 1] == "0" else "0") + v[i + 1:]
        return [(k, other(v) if k.lower() == "etag" else v) for k, v in reply]

    def send_body(self, step, resp, pending):
        kind, limit = step["kind"], step["at"]
        if kind == "stall" and limit is None:
            limit = 0
        cut = kind in ("reset", "truncate", "stall") and limit is not None
        sent = 0
        while True:
            chunk = pending or resp.read(CHUNK)
            pending = b""
            if not chunk:
                break
            if kind == "flipreply" and sent <= (limit or 0) < sent + len(chunk):
                chunk = flip_bit(chunk, (limit or 0) - sent)
            if cut and sent + len(chunk) >= limit:
                self.request.sendall(chunk[: limit - sent])
                self.fault_end(kind, step["arg"])
                return
            self.request.sendall(chunk)
            sent += len(chunk)
        if cut:
            self.fault_end(kind, step["arg"])

    def fault_end(self, kind, arg):
        if kind == "stall":
            self.server.state.stall(float(arg))
        if kind == "reset":
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", type=int, required=True, help="upstream port on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (default: any)")
    ap.add_argument("--plan", default="", help="comma-separated fault steps")
    ap.add_argument("--log", help="file for the per-request log (default stderr)")
    args = ap.parse_args()
    try:
        plan = parse_plan(args.plan)
    except ValueError as e:
        ap.error(str(e))
    log = open(args.log, "a", buffering=1) if args.log else sys.stderr
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args.upstream, plan, log)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
