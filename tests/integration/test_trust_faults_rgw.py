"""Fault injection in front of S3 on Ceph's radosgw (tests/tools/rgw-s3): every plan of
test_trust_faults.py that applies to S3, saves and loads, with the same checks as on moto
(old or new object, never partial; no multipart upload left open; the daemon stays up).
A module of its own so that ctest runs it beside the other long fault runs."""
from ckfs import MountTest
from test_trust_faults import FaultRunner


class RgwFaultTest(FaultRunner, MountTest):
    def test_rgw_faults(self):
        side, key, m = self.run_saves("rgw")
        self.run_commit_faults(side, key, m)
        self.run_bit_flips(side, key, m)
        self.run_loads(side, key, m)
