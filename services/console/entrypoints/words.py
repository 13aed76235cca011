"""Refusals and domain errors in the person's language."""

from services.console.domain.accounts import AccountError
from services.console.domain.refusals import Problem, explain, field_errors
from services.console.entrypoints.web import Pages, Visit


def refusal(pages: Pages, visit: Visit, problem: Problem) -> str:
    _ = pages.translator(visit.language)
    locale = "zh_CN" if visit.language == "zh-CN" else "en"
    return explain(problem, _, lambda instant: pages.when(instant, locale))


def fields(pages: Pages, visit: Visit, problem: Problem) -> dict[str, str]:
    return field_errors(problem, pages.translator(visit.language))


def account_error(pages: Pages, visit: Visit, error: AccountError) -> str:
    _ = pages.translator(visit.language)
    sentences = {
        "login-shape": _("2 to 64 letters, digits or . _ + - (a phone number or a user name)."),
        "login-taken": _("This login is taken: choose another."),
        "password-short": _("At least 8 characters."),
        "password-long": _("At most 256 characters."),
        "scope-missing": _("Required for this role."),
        "scope-unexpected": _("Not for this role."),
    }
    return str(sentences.get(error.code, _("Not valid.")))
