"""Each of dispatch's refusals as the problem a client reads: ONE table, status, problem type
and title per refusal class; the detail (and the body field at fault) come from the refusal."""

from services.dispatch.domain import refusals
from shared.http.problems import Refusal, RefusalTable

REFUSALS: RefusalTable = {
    refusals.NotYours: Refusal(403, "forbidden", "Forbidden"),
    refusals.CommunityExists: Refusal(409, "community-exists", "Community exists"),
    refusals.IdTaken: Refusal(409, "id-taken", "Id taken"),
    refusals.InThePast: Refusal(422, "validation-error", "Unprocessable content"),
    refusals.FillByAfterStart: Refusal(422, "validation-error", "Unprocessable content"),
    refusals.UnknownCommunity: Refusal(422, "unknown-community", "Unknown community"),
    refusals.VersionMismatch: Refusal(412, "version-mismatch", "The demand changed"),
    refusals.DemandClosed: Refusal(409, "demand-closed", "Demand closed"),
    refusals.DemandNotStarted: Refusal(409, "demand-not-started", "Demand not started"),
    refusals.SlotsBelowAccepted: Refusal(409, "slots-below-accepted", "Slots below accepted"),
    refusals.FillByPassed: Refusal(409, "fill-by-passed", "Fill-by passed"),
    refusals.InvalidCursor: Refusal(400, "invalid-cursor", "Invalid cursor"),
    refusals.UnknownUnit: Refusal(422, "unknown-unit", "Unknown unit"),
    refusals.RosterNotProposed: Refusal(409, "roster-not-proposed", "Roster not proposed"),
    refusals.RosterEmpty: Refusal(409, "roster-empty", "Roster empty"),
    refusals.UnknownGrid: Refusal(422, "unknown-grid", "Unknown grid"),
    refusals.InvalidRrule: Refusal(422, "invalid-rrule", "Invalid recurrence rule"),
    refusals.RuleTooLong: Refusal(422, "rrule-unbounded", "Recurrence rule too long"),
    refusals.NoOccurrences: Refusal(422, "no-occurrences", "No occurrences ahead"),
    refusals.SeriesTimes: Refusal(422, "validation-error", "Unprocessable content"),
    refusals.UnknownTimeZone: Refusal(422, "validation-error", "Unprocessable content"),
    refusals.SeriesClosed: Refusal(409, "series-closed", "Series closed"),
}
