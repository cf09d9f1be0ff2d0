"""Keystone v3: version discovery, tokens (password or application credential), the project."""

import secrets

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, SecretStr

from sandbox import accounts
from sandbox.api.common import base_url, iso_micro, on_paths, reply
from sandbox.catalog import REGION, stable_id
from sandbox.faults import REQUIRES_AUTHENTICATION, OpenStackError, Service
from sandbox.tokens import TokenClaims, TokenSigner

# (type, name, path under this server) of every service the catalog lists.
SERVICES = (
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("block-storage", "cinder", "/volume/v3"),
    ("volumev3", "cinderv3", "/volume/v3"),
    ("network", "neutron", "/networking"),
)


class _DomainRef(BaseModel):
    id: str | None = None
    name: str | None = None


class _UserRef(BaseModel):
    id: str | None = None
    name: str | None = None
    domain: _DomainRef | None = None
    password: SecretStr | None = None

    def is_ours(self) -> bool:
        domain = self.domain or _DomainRef()
        return self.id == accounts.USER_ID or (
            self.name == accounts.USER_NAME and accounts.is_default_domain(domain.id, domain.name)
        )


class _PasswordMethod(BaseModel):
    user: _UserRef


class _AppCredMethod(BaseModel):
    id: str | None = None
    name: str | None = None
    secret: SecretStr
    user: _UserRef | None = None


class _TokenMethod(BaseModel):
    id: str


class _Identity(BaseModel):
    methods: list[str]
    password: _PasswordMethod | None = None
    application_credential: _AppCredMethod | None = None
    token: _TokenMethod | None = None


class _ProjectRef(BaseModel):
    id: str | None = None
    name: str | None = None
    domain: _DomainRef | None = None

    def is_ours(self) -> bool:
        domain = self.domain or _DomainRef()
        return self.id == accounts.PROJECT_ID or (
            self.name == accounts.PROJECT_NAME and accounts.is_default_domain(domain.id, domain.name)
        )


class _Scope(BaseModel):
    project: _ProjectRef | None = None


class _Auth(BaseModel):
    identity: _Identity
    scope: _Scope | None = None


class AuthRequest(BaseModel):
    auth: _Auth


def _version(base: str) -> dict:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


def service_catalog(base: str) -> list[dict]:
    return [
        {
            "id": stable_id("service", kind),
            "type": kind,
            "name": name,
            "endpoints": [
                {
                    "id": stable_id("endpoint", kind),
                    "interface": "public",
                    "region_id": REGION,
                    "region": REGION,
                    "url": f"{base}{path}",
                }
            ],
        }
        for kind, name, path in SERVICES
    ]


def _domain() -> dict:
    return {"id": accounts.DOMAIN_ID, "name": accounts.DOMAIN_NAME}


def _project() -> dict:
    return {
        "id": accounts.PROJECT_ID,
        "name": accounts.PROJECT_NAME,
        "domain_id": accounts.DOMAIN_ID,
        "description": "The sandbox cloud's project",
        "enabled": True,
        "is_domain": False,
        "parent_id": accounts.DOMAIN_ID,
        "tags": [],
        "options": {},
    }


def token_body(claims: TokenClaims, base: str, with_catalog: bool = True) -> dict:
    token = {
        "methods": claims.methods,
        "user": {"id": claims.user_id, "name": accounts.USER_NAME, "domain": _domain(), "password_expires_at": None},
        "project": {"id": claims.project_id, "name": accounts.PROJECT_NAME, "domain": _domain()},
        "roles": [{"id": stable_id("role", role).replace("-", ""), "name": role} for role in accounts.ROLES],
        "audit_ids": [claims.audit_id],
        "issued_at": iso_micro(claims.issued_at) + "Z",
        "expires_at": iso_micro(claims.expires_at) + "Z",
        "is_domain": False,
    }
    if claims.application_credential_id:
        token["application_credential"] = {
            "id": accounts.APP_CRED_ID,
            "name": accounts.APP_CRED_NAME,
            "restricted": True,
        }
    if with_catalog:
        token["catalog"] = service_catalog(base)
    return {"token": token}


def _same(given: SecretStr, expected: str) -> bool:
    return secrets.compare_digest(given.get_secret_value().encode(), expected.encode())


def _authenticate(identity: _Identity, signer: TokenSigner) -> str | None:
    """The method that proved the caller is our user, or None when nothing did."""
    if "password" in identity.methods and identity.password:
        user = identity.password.user
        if user.is_ours() and user.password and _same(user.password, accounts.PASSWORD):
            return "password"
    if "application_credential" in identity.methods and identity.application_credential:
        cred = identity.application_credential
        named = cred.id == accounts.APP_CRED_ID or (
            cred.name == accounts.APP_CRED_NAME and cred.user is not None and cred.user.is_ours()
        )
        if named and _same(cred.secret, accounts.APP_CRED_SECRET):
            return "application_credential"
    if "token" in identity.methods and identity.token and signer.verify(identity.token.id):
        return "token"
    return None


def router(signer: TokenSigner) -> APIRouter:
    api = APIRouter()

    @on_paths(api, ["/identity", "/identity/"])
    async def versions(request: Request) -> Response:
        return reply({"versions": {"values": [_version(base_url(request))]}}, 300)

    @on_paths(api, ["/identity/v3", "/identity/v3/"])
    async def version(request: Request) -> Response:
        return reply({"version": _version(base_url(request))})

    @api.post("/identity/v3/auth/tokens")
    async def issue_token(body: AuthRequest, request: Request) -> Response:
        method = _authenticate(body.auth.identity, signer)
        scope = body.auth.scope
        if method is None or (scope is not None and scope.project is not None and not scope.project.is_ours()):
            raise OpenStackError(Service.IDENTITY, 401, REQUIRES_AUTHENTICATION)
        token, claims = signer.issue(
            methods=[method],
            user_id=accounts.USER_ID,
            project_id=accounts.PROJECT_ID,
            application_credential_id=accounts.APP_CRED_ID if method == "application_credential" else None,
        )
        return reply(token_body(claims, base_url(request)), 201, {"X-Subject-Token": token})

    @on_paths(api, ["/identity/v3/auth/tokens"], methods=("GET", "HEAD"))
    async def validate_token(request: Request) -> Response:
        subject = request.headers.get("x-subject-token", "")
        claims = signer.verify(subject) if subject else None
        if claims is None:
            raise OpenStackError(Service.IDENTITY, 404, "Could not find token.")
        if request.method == "HEAD":
            return Response(status_code=200, headers={"X-Subject-Token": subject})
        body = token_body(claims, base_url(request), with_catalog="nocatalog" not in request.query_params)
        return reply(body, 200, {"X-Subject-Token": subject})

    @on_paths(api, ["/identity/v3/projects", "/identity/v3/auth/projects"])
    async def projects(request: Request) -> Response:
        name = request.query_params.get("name")
        found = [] if name not in (None, accounts.PROJECT_NAME) else [_project()]
        return reply({"projects": found, "links": {"self": str(request.url), "next": None, "previous": None}})

    @api.get("/identity/v3/projects/{project_id}")
    async def project(project_id: str) -> Response:
        if project_id != accounts.PROJECT_ID:
            raise OpenStackError(Service.IDENTITY, 404, f"Could not find project: {project_id}.")
        return reply({"project": _project()})

    return api
