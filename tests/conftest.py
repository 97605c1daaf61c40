import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Run the suite with one intra-op thread: the tests use tiny batches, where threading gains nothing,
    and on a shared 2-core machine busy-waiting threads made some modules many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
