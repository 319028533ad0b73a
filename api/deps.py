"""Reusable dependencies as ``Annotated`` types: the runtime, the caller, role and tenant checks.

Who may do what (HTTP status when not):

=================  =====  =======  ===  ========  =======
                   admin  analyst  app  merchant  courier
=================  =====  =======  ===  ========  =======
create merchant    yes    403      403  403       403
merchant reads     yes    403      own  own       403
update merchant    yes    403      403  own       403
quote, order       yes    403      own  own       403
read an order      yes    403      own  own       assigned to it
courier calls      yes    403      403  403       itself (another courier: 403)
tick               yes    403      403  403       403
stats, metrics     yes    yes      403  403       403
events             all    403      own  own       itself
=================  =====  =======  ===  ========  =======

"own" for a merchant key is its merchant; for an app key the merchants it serves. Another
tenant's merchant or order is answered 404, exactly as an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiError
from api.runtime import Runtime
from api.settings import ID_PATTERN, Principal, Role
from dispatch.errors import UnknownMerchant
from dispatch.models import Order

__all__ = [
    "AdminDep",
    "AnalystDep",
    "CallerDep",
    "CourierIdDep",
    "MerchantEditorIdDep",
    "MerchantIdDep",
    "MerchantKeyDep",
    "OrderingDep",
    "ReaderDep",
    "RuntimeDep",
    "can_see_order",
]

_bearer = HTTPBearer(auto_error=False, description="an API key from DISPATCH_API_KEYS")


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    settings = request.app.state.runtime.settings
    principal: Principal | None = settings.principal_for(credentials.credentials) if credentials else None
    if principal is None:
        detail = "missing API key" if credentials is None else "unknown API key"
        raise ApiError(
            "unauthorized",
            f"{detail}: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def _authorize(principal: Principal, allowed: frozenset[Role]) -> Principal:
    if principal.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise ApiError("forbidden", f"a {principal.role.value} key may not do this (allowed: {names})")
    return principal


async def get_caller(request: Request, credentials: _Credentials) -> Principal:
    return _authenticate(request, credentials)


CallerDep = Annotated[Principal, Depends(get_caller)]


# Each check below is one dependency that authenticates by itself, rather than a chain of small
# ones: FastAPI's per-dependency cost was half of a position update's time.
def _roles(*roles: Role) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def check(request: Request, credentials: _Credentials) -> Principal:
        return _authorize(_authenticate(request, credentials), allowed)

    return check


AdminDep = Annotated[Principal, Depends(_roles(Role.ADMIN))]
AnalystDep = Annotated[Principal, Depends(_roles(Role.ADMIN, Role.ANALYST))]
OrderingDep = Annotated[Principal, Depends(_roles(Role.ADMIN, Role.APP, Role.MERCHANT))]
MerchantKeyDep = Annotated[Principal, Depends(_roles(Role.ADMIN, Role.MERCHANT))]
ReaderDep = Annotated[Principal, Depends(_roles(Role.ADMIN, Role.APP, Role.MERCHANT, Role.COURIER))]
_ORDERING = frozenset({Role.ADMIN, Role.APP, Role.MERCHANT})
_MERCHANT_EDITORS = frozenset({Role.ADMIN, Role.MERCHANT})
_COURIER_ACTORS = frozenset({Role.ADMIN, Role.COURIER})

_MerchantPath = Annotated[str, Path(pattern=ID_PATTERN, description="merchant id")]
_CourierPath = Annotated[str, Path(pattern=ID_PATTERN, description="courier id")]


def not_found_merchant(merchant_id: str) -> UnknownMerchant:
    """The error for another tenant's merchant: the same as for one that does not exist."""
    return UnknownMerchant(f"no merchant {merchant_id!r}", id=merchant_id)


async def merchant_in_view(merchant_id: _MerchantPath, request: Request, credentials: _Credentials) -> str:
    principal = _authorize(_authenticate(request, credentials), _ORDERING)
    if not principal.serves_merchant(merchant_id):
        raise not_found_merchant(merchant_id)
    return merchant_id


async def merchant_to_edit(merchant_id: _MerchantPath, request: Request, credentials: _Credentials) -> str:
    principal = _authorize(_authenticate(request, credentials), _MERCHANT_EDITORS)
    if not principal.serves_merchant(merchant_id):
        raise not_found_merchant(merchant_id)
    return merchant_id


async def acting_courier(courier_id: _CourierPath, request: Request, credentials: _Credentials) -> str:
    principal = _authorize(_authenticate(request, credentials), _COURIER_ACTORS)
    if principal.role is Role.COURIER and principal.tenant != courier_id:
        raise ApiError("forbidden", f"this courier key acts for courier {principal.tenant!r} only")
    return courier_id


#: A merchant id from the path that the caller may read (admin, app serving it, the merchant).
MerchantIdDep = Annotated[str, Depends(merchant_in_view)]
#: A merchant id from the path that the caller may change (admin, the merchant itself).
MerchantEditorIdDep = Annotated[str, Depends(merchant_to_edit)]
#: A courier id from the path that the caller may act as (admin, the courier itself).
CourierIdDep = Annotated[str, Depends(acting_courier)]


def can_see_order(principal: Principal, order: Order) -> bool:
    if principal.role is Role.COURIER:
        return order.courier_id is not None and order.courier_id == principal.tenant
    return principal.serves_merchant(order.merchant_id)
