"""The training loader: torchdata's StatefulDataLoader, reshuffled each epoch, resumable mid-epoch, and telling an
augmented dataset which epoch it serves."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchdata.stateful_dataloader import StatefulDataLoader

from lit_compressor.training.datamodule import train_loader


class Draws(Dataset):
    """A dataset whose items depend on the epoch (as the augmented pairs do)."""

    def __init__(self, size: int):
        self.size, self.epoch = size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[int, int]:
        return self.epoch, index


def test_without_a_seed_the_order_is_a_plain_shuffled_dataloaders():
    """The quick start's student depends on it: the same batches and the same global generator afterwards."""
    data = list(range(23))
    torch.manual_seed(5)
    expected = [[b.tolist() for b in DataLoader(data, batch_size=4, shuffle=True)] for _ in range(3)]
    after = torch.rand(1)
    torch.manual_seed(5)
    loader = train_loader(data, 4, torch.utils.data.default_collate)
    assert isinstance(loader, StatefulDataLoader) and type(loader.sampler) is RandomSampler
    assert [[b.tolist() for b in loader] for _ in range(3)] == expected
    assert torch.equal(torch.rand(1), after)


def test_a_seeded_loader_resumes_mid_epoch_to_the_same_batches_and_epochs():
    data = list(range(23))
    collate = torch.utils.data.default_collate
    reference = train_loader(data, 4, collate, order_seed=7)
    uninterrupted = [[b.tolist() for b in reference] for _ in range(3)]
    assert uninterrupted[0] != uninterrupted[1]  # reshuffled each epoch

    first = train_loader(data, 4, collate, order_seed=7)
    [b for b in first]  # epoch 0
    iterator = iter(first)
    served = [next(iterator).tolist() for _ in range(2)]  # epoch 1, killed after 2 batches
    state = first.state_dict()
    torch.manual_seed(123)  # the global generator plays no part
    resumed = train_loader(data, 4, collate, order_seed=7)
    resumed.load_state_dict(state)
    rest = [b.tolist() for b in resumed]
    assert served + rest == uninterrupted[1]
    assert [b.tolist() for b in resumed] == uninterrupted[2]


def test_the_sampler_passes_lightnings_set_epoch_on_to_a_dataset_that_draws_per_epoch():
    for seed in (None, 3):
        dataset = Draws(6)
        loader = train_loader(dataset, 3, list, order_seed=seed)
        loader.sampler.set_epoch(4)
        assert dataset.epoch == 4 and {item[0] for batch in loader for item in batch} == {4}
