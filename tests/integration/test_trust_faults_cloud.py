"""Fault injection in front of the GCS (fake_gcs.py) and Azure (Azurite) backends: the
plans of test_trust_faults.py that apply to them (every HTTP-level fault; part and commit
faults for their uploads in parts), saves and loads, with the same checks: on GCS, as on
S3, no plan leaves a multipart upload open (a lost initiate reply's upload is swept);
and faults on the commit request alone (a lost reply, 500 after success, never applied),
settled by the upload's mark in the object's metadata."""
from ckfs import MountTest
from test_trust_faults import FaultRunner


class CloudFaultTest(FaultRunner, MountTest):
    def test_gcs_faults(self):
        side, key, m = self.run_saves("gcs")
        self.run_commit_faults(side, key, m)
        self.run_bit_flips(side, key, m)
        self.run_loads(side, key, m)
        # a lost initiate reply leaves an upload of the key that the sweep aborts
        left = side.gcs.state()["uploads"]
        self.assertEqual(left, [], "uploads left open")
        print(f"gcs: {len(left)} upload(s) left open")

    def test_azure_faults(self):
        side, key, m = self.run_saves("azure")
        self.run_commit_faults(side, key, m)
        # Azure answers 400 Md5Mismatch, sent again; Azurite answers 400 InvalidOperation
        # ("Provided contentMD5 doesn't match"), which names no mismatch: the save fails
        self.run_bit_flips(side, key, m, resent=False)
        self.run_loads(side, key, m)
