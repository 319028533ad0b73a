"""schemathesis with every check it has (``--checks all``) over every operation, with an admin key
and with an app key, a fixed seed and a bounded number of examples (issue #15).

``tests/api/test_contract.py`` runs the default checks; this adds the rest: ignored auth, missing
required headers, unsupported methods (405 with ``Allow``), use after free, resource
availability, object-level authorization, ``Allow`` header conformance. The two narrow
refinements of ``test_contract.py`` apply here too (413 as a rejection; business-rule 422s as
legitimate answers to schema-valid data).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import Case
from schemathesis.checks import CHECKS, positive_data_acceptance

from tests.api.conftest import ADMIN, APP
from tests.api.test_contract import (
    _NEGATIVE_REJECTION,
    MAX_EXAMPLES,
    SEED,
    _seeded_app,
    positive_data_acceptance_beyond_schema,
)


def _schema(key: str) -> Any:
    return schemathesis.openapi.from_asgi(
        "/openapi.json",
        _seeded_app(),
        config=schemathesis.Config.from_dict(
            {
                "seed": SEED,
                "generation": {"max-examples": MAX_EXAMPLES // 2, "database": "none"},
                "auth": {"openapi": {"HTTPBearer": {"bearer": key}}},
                "checks": {"negative_data_rejection": {"expected-statuses": _NEGATIVE_REJECTION}},
            }
        ),
    )


admin_schema = _schema(ADMIN)
app_schema = _schema(APP)
#: every check schemathesis knows (loading a schema registers the OpenAPI ones)
ALL_CHECKS = [c for c in CHECKS.get_by_names(CHECKS.get_all_names()) if c is not positive_data_acceptance]


def _validate(case: Case[Any]) -> None:
    case.call_and_validate(checks=[*ALL_CHECKS, positive_data_acceptance_beyond_schema])


@admin_schema.parametrize()
def test_every_check_with_an_admin_key(case: Case[Any]) -> None:
    _validate(case)


@app_schema.parametrize()
def test_every_check_with_an_app_key(case: Case[Any]) -> None:
    _validate(case)
