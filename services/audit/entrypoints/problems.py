"""Audit's one table: each refusal and the problem it answers with."""

from services.audit.domain.refusals import BadQuestion, OtherCommunity
from shared.http.problems import Refusal, RefusalTable

REFUSALS: RefusalTable = {
    OtherCommunity: Refusal(403, "forbidden", "Forbidden"),
    BadQuestion: Refusal(422, "validation-error", "Unprocessable content"),
}
