"""Data: raw videos/photos → a prepared dataset (``prepare``), and random access to it (``dataset``)."""

from talkinghead.data.dataset import Clip, PreparedDataset
from talkinghead.data.prepare import PrepareSummary, prepare_dataset
from talkinghead.data.sources import SourceItem, find_sources

__all__ = ["Clip", "PrepareSummary", "PreparedDataset", "SourceItem", "find_sources", "prepare_dataset"]
