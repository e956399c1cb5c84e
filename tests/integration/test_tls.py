"""https:// end to end: nginx with a test CA's certificate (tests/tools/nginx-tls) in front
of nginx-dav (http store), moto (S3, signatures on), the GCS fake (gs://, its token
endpoint over http) and Azurite (az://, Shared Key). The certificate is always
verified: the CA named by SSL_CERT_FILE, CURL_CA_BUNDLE or (S3) AWS_CA_BUNDLE is trusted;
without it, with a certificate for another name, or with a bundle that cannot be read,
the save fails with a clear TLS error naming the bundle, the old object stays, and the
daemon goes on. No option turns verification off."""
import os
import shutil
import subprocess

from ckfs import TOOLS, MountTest, Nginx, make_sample_tree, tree
from test_s3 import BUCKET, Moto

TLS_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A test CA, and two server certificates it signs: one for 127.0.0.1 (and
    localhost), one for another name only. Returns {name: path}."""
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=ckptfs test CA", cwd=d)
    for name, san in (("good", "IP:127.0.0.1,DNS:localhost"), ("other", "DNS:other.example")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)
    return {k: os.path.join(d, k) for k in ("ca.pem", "good.pem", "good.key", "other.pem",
                                            "other.key")}


class TlsFront:
    """tests/tools/nginx-tls on 127.0.0.1 in front of an upstream port."""

    def __init__(self, base, name, upstream, cert, key):
        self.dir = os.path.join(base, name)
        out = subprocess.run([os.path.join(TOOLS, "nginx-tls"), "start", self.dir,
                              str(upstream), cert, key], capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(f"nginx-tls start failed: {out.stderr}")
        self.port = int(out.stdout.strip().splitlines()[-1])
        self.url = f"https://127.0.0.1:{self.port}"

    def stop(self):
        subprocess.run([os.path.join(TOOLS, "nginx-tls"), "stop", self.dir])


def env_with(**tls):
    """os.environ without any CA setting, plus tls."""
    env = {k: v for k, v in os.environ.items() if k not in TLS_VARS}
    env.update(tls)
    return env


def only_tls(env, tls):
    """env without any CA setting, plus tls."""
    env = {k: v for k, v in env.items() if k not in TLS_VARS}
    env.update(tls)
    return env


class TlsTest(MountTest):
    def setUp(self):
        super().setUp()
        self.pki = make_pki(os.path.join(self.base, "pki"))
        self.src = os.path.dirname(self.path("src", "x"))
        make_sample_tree(self.src, big=3 << 20)
        self.want = tree(self.src)

    def front(self, name, upstream, cert="good"):
        f = TlsFront(self.base, name, upstream, self.pki[f"{cert}.pem"], self.pki[f"{cert}.key"])
        self.addCleanup(f.stop)
        return f

    def nginx(self):
        ng = Nginx(self.base)
        self.addCleanup(ng.stop)
        return ng

    def save(self, dest, env, name, expect_ok=True):
        m = self.mount(dest, env=env, name=name)
        shutil.copytree(self.src, m.save, symlinks=True, dirs_exist_ok=True)
        rc = m.touch_save()
        if expect_ok:
            self.assertEqual(rc, 0, m.logtext())
        else:
            self.assertNotEqual(rc, 0, "a save over an unverified connection succeeded")
        return m

    def refused(self, m, *words):
        """The failed save's error: a TLS refusal naming the bundle; the daemon is up."""
        last = m.status()["save"]["last"]
        self.assertEqual(last["result"], "failed")
        err = last["error"]
        self.assertIn("TLS: ", err)
        for w in words:
            self.assertIn(w, err)
        self.assertIn("SSL_CERT_FILE", err)  # what to do about it
        self.assertNotIn("retry 1 of", m.logtext())  # refused at once, never retried
        print(f"\nrefused: {err}")
        self.assertIn("model.pt", os.listdir(m.save))  # the daemon still serves; nothing lost
        return err

    def test_http_over_tls_with_ssl_cert_file(self):
        ng = self.nginx()
        f = self.front("tls", ng.port)
        url = f.url + "/runs/1/_flytecheckpoints"
        m = self.save(url, env_with(SSL_CERT_FILE=self.pki["ca.pem"]), "m1")
        m.unmount()
        m2 = self.mount(self.path("d", "next"), [url], env=env_with(
            CURL_CA_BUNDLE=self.pki["ca.pem"]), name="m2")  # the other variable
        self.assertEqual(tree(m2.prev), self.want)
        self.assertIn("PUT /runs/1/_flytecheckpoints", open(
            os.path.join(f.dir, "logs", "access.log")).read())

    def test_untrusted_certificate_is_refused(self):
        ng = self.nginx()
        f = self.front("tls", ng.port)
        url = f.url + "/runs/2/ck"
        self.save(url, env_with(SSL_CERT_FILE=self.pki["ca.pem"]), "m1").unmount()
        old = open(os.path.join(ng.data, "runs", "2", "ck"), "rb").read()
        # the system's CAs do not include the test CA
        m = self.save(url, env_with(), "m2", expect_ok=False)
        self.refused(m, "the system's bundle")
        self.assertEqual(open(os.path.join(ng.data, "runs", "2", "ck"), "rb").read(), old)
        # a restore is refused the same way
        m3 = self.mount(self.path("d3", "x"), [url], env=env_with(), name="m3")
        with self.assertRaises(OSError):
            os.listdir(m3.prev)
        self.assertIn("TLS: ", m3.status()["prev"]["error"])

    def test_certificate_for_another_name_is_refused(self):
        ng = self.nginx()
        f = self.front("tls-other", ng.port, cert="other")
        m = self.save(f.url + "/x/ck", env_with(SSL_CERT_FILE=self.pki["ca.pem"]), "m1",
                      expect_ok=False)
        self.refused(m, self.pki["ca.pem"], "127.0.0.1")
        self.assertFalse(os.path.exists(os.path.join(ng.data, "x", "ck")))

    def test_unreadable_bundle_is_named(self):
        ng = self.nginx()
        f = self.front("tls", ng.port)
        missing = os.path.join(self.base, "no-such-ca.pem")
        m = self.save(f.url + "/y/ck", env_with(SSL_CERT_FILE=missing), "m1", expect_ok=False)
        self.refused(m, missing)

    def test_s3_over_tls_with_aws_ca_bundle(self):
        moto = Moto(self.base)
        self.addCleanup(moto.stop)
        moto.client().create_bucket(Bucket=BUCKET)
        f = self.front("tls-s3", moto.port)
        uri = f"s3://{BUCKET}/tls/ck"
        # AWS_CA_BUNDLE alone is enough for s3://, as for the AWS CLI and SDKs
        m = self.save(uri, moto.env(f.url, AWS_CA_BUNDLE=self.pki["ca.pem"],
                                    CKPTFS_S3_PART_SIZE="5M"), "m1")
        m.unmount()
        m2 = self.mount(self.path("d", "x"), [uri], env=moto.env(
            f.url, AWS_CA_BUNDLE=self.pki["ca.pem"]), name="m2")
        self.assertEqual(tree(m2.prev), self.want)
        m2.unmount()
        # without it the store's certificate is refused; the object stays as it was
        before = moto.client().get_object(Bucket=BUCKET, Key="tls/ck")["ETag"]
        m3 = self.save(uri, {k: v for k, v in moto.env(f.url).items() if k not in TLS_VARS},
                       "m3", expect_ok=False)
        self.refused(m3, "the system's bundle")
        self.assertEqual(moto.client().get_object(Bucket=BUCKET, Key="tls/ck")["ETag"], before)

    def cloud_round_trip(self, uri, env_ok, env_bare, read_object):
        """A save and a restore over TLS with the test CA; then a save without it is refused
        and the object stays as it was."""
        m = self.save(uri, env_ok, "m1")
        m.unmount()
        m2 = self.mount(self.path("d", "x"), [uri], env=env_ok, name="m2")
        self.assertEqual(tree(m2.prev), self.want)
        m2.unmount()
        before = read_object()
        m3 = self.save(uri, env_bare, "m3", expect_ok=False)
        self.refused(m3, "the system's bundle")
        self.assertEqual(read_object(), before)

    def test_gcs_over_tls(self):
        from test_gcs import BUCKET as GBUCKET, FakeGcs, gcs_env
        gcs = FakeGcs(self.base)
        self.addCleanup(gcs.stop)
        f = self.front("tls-gcs", gcs.port)

        def env(**tls):
            return only_tls(gcs_env(GOOGLE_APPLICATION_CREDENTIALS=gcs.sa_file(),
                                    CKPTFS_GCS_ENDPOINT=f.url, CKPTFS_GCS_PART_SIZE="5M"), tls)
        self.cloud_round_trip(f"gs://{GBUCKET}/tls/ck", env(SSL_CERT_FILE=self.pki["ca.pem"]),
                              env(), lambda: gcs.object("tls/ck"))
        self.assertIn("/tls/ck", open(os.path.join(f.dir, "logs", "access.log")).read())

    def test_azure_over_tls(self):
        from test_azure import ACCOUNT, CONTAINER, Azurite, az_env, azblob
        az = Azurite(self.base)
        self.addCleanup(az.stop)
        azblob.create_container(az.port, CONTAINER)
        f = self.front("tls-az", az.port)
        conn = (f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};"
                f"AccountKey={azblob.KEY};BlobEndpoint={f.url}/{ACCOUNT};")

        def env(**tls):
            return only_tls(az_env(AZURE_STORAGE_CONNECTION_STRING=conn,
                                   CKPTFS_AZURE_BLOCK_SIZE="4M"), tls)
        self.cloud_round_trip(f"az://{CONTAINER}/tls/ck", env(CURL_CA_BUNDLE=self.pki["ca.pem"]),
                              env(), lambda: azblob.get_blob(az.port, CONTAINER, "tls/ck"))
        self.assertIn("/tls/ck", open(os.path.join(f.dir, "logs", "access.log")).read())
