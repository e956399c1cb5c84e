"""Fault injection in front of the GCS (fake_gcs.py) and Azure (Azurite) backends: the
plans of test_trust_faults.py that apply to them (every HTTP-level fault; part and commit
faults for their uploads in parts), saves and loads, with the same checks."""
from ckfs import MountTest
from test_trust_faults import FaultRunner


class CloudFaultTest(FaultRunner, MountTest):
    def setUp(self):
        super().setUp()
        self.orphans = 0

    def test_gcs_faults(self):
        side, key, m = self.run_saves("gcs")
        self.run_loads(side, key, m)
        print(f"gcs: {self.orphans} upload(s) left open by a lost Initiate reply (known gap)")

    def test_azure_faults(self):
        side, key, m = self.run_saves("azure")
        self.run_loads(side, key, m)
