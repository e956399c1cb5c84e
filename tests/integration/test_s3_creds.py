"""Every AWS credential source through a real mount (issue 3): the daemon finds the
credentials the way AWS's SDKs do and saves to moto with them. Static keys are checked by
moto in signature mode (a wrong key fails); temporary ones come from moto's STS (web
identity) or from tests/tools/fake_aws_meta.py (container credentials, IMDSv2), whose
request counters show they were used."""
import json
import os
import subprocess
import sys
import urllib.request

from ckfs import TOOLS, MountTest
from test_s3 import BUCKET, Moto


class FakeMeta:
    def __init__(self, base, container_auth="pod-identity-token"):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(TOOLS, "fake_aws_meta.py"), "--container-auth",
             container_auth], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def counts(self):
        with urllib.request.urlopen(self.url + "/__ctl/counts", timeout=5) as r:
            return json.load(r)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class MotoOpen(Moto):
    """moto without signature checks: for credentials moto cannot have issued."""

    def __init__(self, base):
        self.dir = os.path.join(base, "moto-open")
        out = subprocess.run([os.path.join(TOOLS, "moto-s3"), "start", self.dir],
                             capture_output=True, text=True, check=True)
        kv = dict(line.split("=", 1) for line in out.stdout.split())
        self.port = int(kv["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys = (kv["AWS_ACCESS_KEY_ID"], kv["AWS_SECRET_ACCESS_KEY"])


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "FLYTE_AWS_", "GOOGLE_", "AZURE_"))}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1",
               HOME=os.environ.get("CK_FAKE_HOME", "/nonexistent"))
    env.update(extra)
    return env


class CredentialSourcesTest(MountTest):
    def save_with(self, moto, env, key):
        m = self.mount(f"s3://{BUCKET}/{key}", env=env, name="m-" + key)
        with open(os.path.join(m.save, "f"), "w") as f:
            f.write(key)
        rc = m.touch_save()
        log = m.logtext()
        m.unmount()
        return rc, log

    def check_saved(self, moto, key):
        body = moto.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        self.assertGreater(len(body), 0)

    def signed_moto(self):
        moto = Moto(self.base)
        self.addCleanup(moto.stop)
        moto.client().create_bucket(Bucket=BUCKET)
        return moto

    def open_moto(self):
        moto = MotoOpen(self.base)
        self.addCleanup(moto.stop)
        moto.client().create_bucket(Bucket=BUCKET)
        return moto

    def test_environment_keys(self):
        moto = self.signed_moto()
        env = clean_env(AWS_ENDPOINT_URL=moto.url, AWS_ACCESS_KEY_ID=moto.keys[0],
                        AWS_SECRET_ACCESS_KEY=moto.keys[1])
        self.assertEqual(self.save_with(moto, env, "env")[0], 0)
        self.check_saved(moto, "env")
        bad = dict(env, AWS_SECRET_ACCESS_KEY="wrong" + moto.keys[1])
        rc, log = self.save_with(moto, bad, "env-bad")
        self.assertNotEqual(rc, 0)
        self.assertIn("SignatureDoesNotMatch", log)
        self.assertNotIn(bad["AWS_SECRET_ACCESS_KEY"], log)

    def test_flyte_environment_keys_and_endpoint(self):
        moto = self.signed_moto()
        env = clean_env(FLYTE_AWS_ENDPOINT=moto.url, FLYTE_AWS_ACCESS_KEY_ID=moto.keys[0],
                        FLYTE_AWS_SECRET_ACCESS_KEY=moto.keys[1])
        self.assertEqual(self.save_with(moto, env, "flyte")[0], 0)
        self.check_saved(moto, "flyte")

    def test_shared_credentials_file_and_profile(self):
        moto = self.signed_moto()
        creds = self.path("aws", "credentials")
        with open(creds, "w") as f:
            f.write(f"[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
                    f"[ckpt]\naws_access_key_id = {moto.keys[0]}\n"
                    f"aws_secret_access_key = {moto.keys[1]}\n")
        env = clean_env(AWS_ENDPOINT_URL=moto.url, AWS_SHARED_CREDENTIALS_FILE=creds,
                        AWS_CONFIG_FILE=self.path("aws", "config"), AWS_PROFILE="ckpt")
        open(env["AWS_CONFIG_FILE"], "w").write("[profile ckpt]\nregion = us-east-1\n")
        self.assertEqual(self.save_with(moto, env, "profile")[0], 0)
        self.check_saved(moto, "profile")

    def test_web_identity(self):
        moto = self.open_moto()  # moto's STS needs its no-auth mode (FACTS.md)
        token = self.path("sa", "token")
        open(token, "w").write("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl")
        env = clean_env(AWS_ENDPOINT_URL=moto.url,
                        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/ckpt",
                        AWS_WEB_IDENTITY_TOKEN_FILE=token, AWS_ROLE_SESSION_NAME="ck-it")
        rc, log = self.save_with(moto, env, "irsa")
        self.assertEqual(rc, 0, log)
        self.check_saved(moto, "irsa")
        self.assertNotIn("c2lnbmF0dXJl", log)  # the token never reaches the log

    def test_container_credentials(self):
        moto = self.open_moto()
        meta = FakeMeta(self.base)
        self.addCleanup(meta.stop)
        tok = self.path("pod", "token")
        open(tok, "w").write("pod-identity-token")
        env = clean_env(AWS_ENDPOINT_URL=moto.url,
                        AWS_CONTAINER_CREDENTIALS_FULL_URI=meta.url + "/container/v1/credentials",
                        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=tok)
        rc, log = self.save_with(moto, env, "pod")
        self.assertEqual(rc, 0, log)
        self.check_saved(moto, "pod")
        self.assertGreaterEqual(meta.counts()["container"], 1)
        self.assertNotIn("pod-identity-token", log)

    def test_instance_metadata(self):
        moto = self.open_moto()
        meta = FakeMeta(self.base)
        self.addCleanup(meta.stop)
        env = clean_env(AWS_ENDPOINT_URL=moto.url, AWS_EC2_METADATA_DISABLED="false",
                        AWS_EC2_METADATA_SERVICE_ENDPOINT=meta.url)
        rc, log = self.save_with(moto, env, "imds")
        self.assertEqual(rc, 0, log)
        self.check_saved(moto, "imds")
        c = meta.counts()
        self.assertGreaterEqual(c["token"], 1)  # IMDSv2: a session token first
        self.assertGreaterEqual(c["imds_creds"], 1)

    def test_no_credentials_is_a_clear_error(self):
        moto = self.signed_moto()
        rc, log = self.save_with(moto, clean_env(AWS_ENDPOINT_URL=moto.url), "none")
        self.assertNotEqual(rc, 0)
        self.assertIn("credentials", log.lower())

    def test_no_sign_request(self):
        moto = self.open_moto()
        m = self.mount(f"s3://{BUCKET}/public", env=clean_env(AWS_ENDPOINT_URL=moto.url),
                       extra=["--no-sign-request"], name="m-public")
        with open(os.path.join(m.save, "f"), "w") as f:
            f.write("public")
        self.assertEqual(m.touch_save(), 0, m.logtext())
        self.check_saved(moto, "public")
