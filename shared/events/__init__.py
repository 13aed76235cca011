"""The CloudEvents envelope and the catalogue of event data models."""

from shared.events.catalogue import CATALOGUE, EventData, data_model_for, read_data
from shared.events.envelope import CloudEvent, make_event

__all__ = ["CATALOGUE", "CloudEvent", "EventData", "data_model_for", "make_event", "read_data"]
