"""Audit's refusals (pure: no HTTP); `entrypoints/problems.py` says how each answers."""


class OtherCommunity(Exception):
    """A secretary asked about a community that is not theirs."""


class BadQuestion(Exception):
    """The parameters are each valid but together ask nothing answerable (an empty window,
    `after` without its partition, a cursor this service never gave)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.errors = [{"msg": detail}]
