"""The paper's claims, checked over every device of this run after the sweep.

The plugin runs these last. A claim contradicted by conclusive evidence fails
with its evidence; one the run cannot decide (the grid cannot test it, or the
figures' uncertainty leaves it open) is skipped as "inconclusive: <reason>:
<statistic> = <value>, limit <limit>". Each says whether it was reproduced on
measured devices, holds only in simulation, or holds on synthetic data.
"""
import pytest

CLAIMS = ["C1", "C2", "C3", "C4", "C5", "C6"]


@pytest.mark.edgecheck_claim
@pytest.mark.parametrize("claim_id", CLAIMS)
def test_claim(claim_id, edgecheck_claims):
    claim = edgecheck_claims(claim_id)
    print(f"{claim.id} {claim.status}: {claim.message}")
    if claim.outcome.status == "inconclusive":
        pytest.skip(claim.outcome.summary)
    assert claim.outcome.status == "pass", f"{claim.id} ({claim.title}) {claim.status}: {claim.message} " \
                                           f"[{claim.outcome.summary}]"
