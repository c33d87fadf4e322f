"""The paper's claims, checked over every device of this run after the sweep.

The plugin runs these last. A claim that does not hold fails with its evidence;
one whose device did not run is skipped with the reason. Each prints whether it
was reproduced on measured devices or holds only in simulation.
"""
import pytest

CLAIMS = ["C1", "C2", "C3", "C4", "C5", "C6"]


@pytest.mark.edgecheck_claim
@pytest.mark.parametrize("claim_id", CLAIMS)
def test_claim(claim_id, edgecheck_claims):
    claim = edgecheck_claims(claim_id)
    print(f"{claim.id} {claim.status}: {claim.message}")
    if claim.holds is None:
        pytest.skip(f"{claim.id}: {claim.message}")
    assert claim.holds, f"{claim.id} ({claim.title}) {claim.status}: {claim.message}"
    assert claim.status in ("reproduced", "holds in simulation")
