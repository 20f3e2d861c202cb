"""pytest: the campaign's modules import each other by name; each test module shares one lab
(moto and the proxy), stopped at the module's end."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="module", autouse=True)
def lab():
    import campaign

    yield campaign.lab()
    campaign.LAB.close()
    campaign.LAB = None
