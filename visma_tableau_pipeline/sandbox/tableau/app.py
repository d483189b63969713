"""The Tableau REST routes, as a Starlette app. Handlers are thin: parse, call the records, render.

Routes live under `/api/{version}/` for any version; TSC asks `/api/2.4/serverInfo` first and
then uses the version the sandbox reports. Work runs in a worker thread under the state's lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from visma_tableau_pipeline.sandbox.tableau import errors
from visma_tableau_pipeline.sandbox.tableau.auth import Session
from visma_tableau_pipeline.sandbox.tableau.datasources import Datasource, PublishMode
from visma_tableau_pipeline.sandbox.tableau.directory import Project, SandboxUser
from visma_tableau_pipeline.sandbox.tableau.listing import list_page
from visma_tableau_pipeline.sandbox.tableau.multipart import parse_parts
from visma_tableau_pipeline.sandbox.tableau.render import (
    connection_xml,
    datasource_xml,
    group_xml,
    job_xml,
    project_xml,
    user_xml,
    webhook_xml,
)
from visma_tableau_pipeline.sandbox.tableau.stamps import format_time
from visma_tableau_pipeline.sandbox.tableau.state import SandboxState
from visma_tableau_pipeline.sandbox.tableau.traffic import TrafficMiddleware
from visma_tableau_pipeline.sandbox.tableau.xmlio import (
    element,
    error_response,
    parse_request,
    required_child,
    ts_response,
)


@dataclass
class Call:
    """One request, read in full, as the handlers need it."""

    path: dict[str, str]
    query: dict[str, str]
    headers: Headers
    body: bytes
    session: Session | None = None

    @property
    def user_id(self) -> str:
        assert self.session is not None
        return self.session.user_id


Handler = Callable[[SandboxState, Call], Response]


def _wrap(state: SandboxState, handler: Handler, public: bool) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        body = await request.body()
        call = Call(dict(request.path_params), dict(request.query_params), request.headers, body)

        def run() -> Response:
            with state.lock:
                try:
                    if not public:
                        call.session = state.auth.session(request.headers.get("x-tableau-auth"))
                        site = call.path.get("site")
                        if site is not None and site != state.directory.site.id:
                            raise errors.not_found(
                                errors.SITE_NOT_FOUND, f"Site '{site}' could not be found."
                            )
                    return handler(state, call)
                except errors.TableauApiError as exc:
                    return error_response(exc)

        return await run_in_threadpool(run)

    return endpoint


# -- server info and auth -------------------------------------------------------------------


def server_info(state: SandboxState, call: Call) -> Response:
    version = state.version
    product = element("productVersion", {"build": version.build})
    product.text = version.product_version
    rest = element("restApiVersion")
    rest.text = version.rest_api_version
    return ts_response([element("serverInfo", {}, product, rest)])


def sign_in(state: SandboxState, call: Call) -> Response:
    credentials = required_child(parse_request(call.body), "credentials")
    session = state.auth.sign_in(credentials)
    site = state.directory.site
    remaining = max(0, int(session.expires_at - state.clock()))
    hours, rest = divmod(remaining, 3600)
    node = element(
        "credentials",
        {"token": session.token, "estimatedTimeToExpiration": f"{hours}:{rest // 60:02d}:{rest % 60:02d}"},
        element("site", {"id": site.id, "name": site.name, "contentUrl": site.content_url}),
        element("user", {"id": session.user_id}),
    )
    return ts_response([node])


def sign_out(state: SandboxState, call: Call) -> Response:
    try:
        state.auth.sign_out(call.headers.get("x-tableau-auth"))
    except errors.TableauApiError:
        pass  # Tableau answers 204 to signing out an ended session too
    return Response(status_code=204)


# -- projects ---------------------------------------------------------------------------------


_PROJECT_FIELDS: dict[str, Callable[[Project], str | None]] = {
    "name": lambda p: p.name,
    "parentProjectId": lambda p: p.parent_id,
    "topLevelProject": lambda p: "true" if p.parent_id is None else "false",
    "createdAt": lambda p: format_time(p.created_at),
}


def projects_list(state: SandboxState, call: Call) -> Response:
    page, pagination = list_page(list(state.directory.projects.values()), call.query, _PROJECT_FIELDS)
    return ts_response([pagination, element("projects", {}, *map(project_xml, page))])


def projects_create(state: SandboxState, call: Call) -> Response:
    node = required_child(parse_request(call.body), "project")
    name = node.get("name")
    if not name:
        raise errors.bad_request("A project needs a name.")
    project = state.directory.create_project(name, node.get("description"), node.get("parentProjectId"))
    return ts_response([project_xml(project)], status=201)


# -- data sources -----------------------------------------------------------------------------


def _datasource_fields(state: SandboxState) -> dict[str, Callable[[Datasource], str | None]]:
    directory = state.directory

    def project_name(d: Datasource) -> str | None:
        project = directory.projects.get(d.project_id)
        return project.name if project else None

    def owner_name(d: Datasource) -> str | None:
        owner = directory.users.get(d.owner_id)
        return owner.name if owner else None

    return {
        "name": lambda d: d.name,
        "contentUrl": lambda d: d.content_url,
        "projectName": project_name,
        "ownerName": owner_name,
        "type": lambda d: "hyper",
        "createdAt": lambda d: format_time(d.created_at),
        "updatedAt": lambda d: format_time(d.updated_at),
    }


def datasources_list(state: SandboxState, call: Call) -> Response:
    records = list(state.datasources.records.values())
    page, pagination = list_page(records, call.query, _datasource_fields(state))
    items = [datasource_xml(d, state.directory) for d in page]
    return ts_response([pagination, element("datasources", {}, *items)])


def datasource_get(state: SandboxState, call: Call) -> Response:
    datasource = state.datasources.get(call.path["datasource"])
    return ts_response([datasource_xml(datasource, state.directory)])


def datasource_delete(state: SandboxState, call: Call) -> Response:
    state.datasources.delete(call.path["datasource"])
    return Response(status_code=204)


def datasource_connections(state: SandboxState, call: Call) -> Response:
    datasource = state.datasources.get(call.path["datasource"])
    return ts_response([element("connections", {}, connection_xml(datasource))])


def datasource_content(state: SandboxState, call: Call) -> Response:
    datasource = state.datasources.get(call.path["datasource"])
    return Response(
        state.datasources.file_of(datasource).read_bytes(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{datasource.content_url}.hyper"'},
    )


def _publish_mode(query: dict[str, str]) -> PublishMode:
    flags = {key.lower(): value.lower() == "true" for key, value in query.items()}
    if flags.get("overwrite") and flags.get("append"):
        raise errors.bad_request("overwrite and append cannot both be true.", "400011")
    if flags.get("overwrite"):
        return PublishMode.OVERWRITE
    if flags.get("append"):
        return PublishMode.APPEND
    return PublishMode.CREATE_NEW


def datasource_publish(state: SandboxState, call: Call) -> Response:
    file_type = call.query.get("datasourceType", "").lower()
    if file_type != "hyper":
        raise errors.bad_request(
            f"The sandbox stores .hyper data sources only; datasourceType was '{file_type}'.", "400011"
        )
    mode = _publish_mode(call.query)
    parts = parse_parts(call.body, call.headers.get("content-type", ""))
    if "request_payload" not in parts:
        raise errors.bad_request("The multipart body has no request_payload part.")
    node = required_child(parse_request(parts["request_payload"]), "datasource")
    name = node.get("name")
    if not name:
        raise errors.bad_request("The data source needs a name.")
    upload_id = call.query.get("uploadSessionId")
    if upload_id:
        staged = state.datasources.take_upload(upload_id)
    elif "tableau_datasource" in parts:
        staged = state.datasources.stage_bytes(parts["tableau_datasource"])
    else:
        raise errors.bad_request("No file: neither a tableau_datasource part nor an uploadSessionId.")
    project = node.find("project")
    datasource = state.datasources.publish(
        name,
        project.get("id") if project is not None else None,
        node.get("description"),
        staged,
        mode,
        call.user_id,
    )
    if call.query.get("asJob", "").lower() == "true":
        job = state.jobs.record("PublishDatasource", "publishDatasourceJob", datasource.id, datasource.name)
        return ts_response([job_xml(job, state.jobs.is_complete(job))], status=202)
    return ts_response([datasource_xml(datasource, state.directory)], status=201)


def datasource_update_data(state: SandboxState, call: Call) -> Response:
    request_id = call.headers.get("requestid")
    if not request_id:
        raise errors.bad_request("The RequestID header is required: it makes the update idempotent.")
    try:
        document = json.loads(call.body, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"The body is not JSON: {exc}") from None
    actions = document.get("actions") if isinstance(document, dict) else None
    if not isinstance(actions, list) or not actions:
        raise errors.bad_request('The body must be {"actions": [...]} with at least one action.')
    upload_id = call.query.get("uploadSessionId")
    payload = state.datasources.take_upload(upload_id) if upload_id else None
    job = state.datasources.update_data(call.path["datasource"], request_id, actions, payload)
    return ts_response([job_xml(job, state.jobs.is_complete(job))], status=202)


def datasource_refresh(state: SandboxState, call: Call) -> Response:
    job = state.datasources.refresh(call.path["datasource"])
    return ts_response([job_xml(job, state.jobs.is_complete(job))], status=202)


# -- file uploads and jobs ---------------------------------------------------------------------


def upload_start(state: SandboxState, call: Call) -> Response:
    upload_id = state.datasources.start_upload()
    return ts_response([element("fileUpload", {"uploadSessionId": upload_id, "fileSize": 0})], status=201)


def upload_append(state: SandboxState, call: Call) -> Response:
    parts = parse_parts(call.body, call.headers.get("content-type", ""))
    if "tableau_file" not in parts:
        raise errors.bad_request("The multipart body has no tableau_file part.")
    size = state.datasources.append_upload(call.path["upload"], parts["tableau_file"])
    size_mb = size // (1024 * 1024)
    node = element("fileUpload", {"uploadSessionId": call.path["upload"], "fileSize": size_mb})
    return ts_response([node])


def job_get(state: SandboxState, call: Call) -> Response:
    job = state.jobs.get(call.path["job"])
    return ts_response([job_xml(job, state.jobs.is_complete(job))])


# -- webhooks ---------------------------------------------------------------------------------


def webhooks_list(state: SandboxState, call: Call) -> Response:
    webhooks = list(state.webhooks.webhooks.values())
    page, pagination = list_page(webhooks, call.query, {"name": lambda w: w.name})
    return ts_response([pagination, element("webhooks", {}, *map(webhook_xml, page))])


def webhooks_create(state: SandboxState, call: Call) -> Response:
    node = required_child(parse_request(call.body), "webhook")
    source = node.find("webhook-source")
    events = list(source) if source is not None else []
    event = events[0].tag if events else node.get("event")
    destination = node.find("webhook-destination/webhook-destination-http")
    if not event or destination is None or not destination.get("url") or not node.get("name"):
        raise errors.bad_request("A webhook needs a name, a webhook-source event and a destination url.")
    webhook = state.webhooks.create(node.get("name", ""), event, destination.get("url", ""), call.user_id)
    return ts_response([webhook_xml(webhook)], status=201)


def webhook_get(state: SandboxState, call: Call) -> Response:
    return ts_response([webhook_xml(state.webhooks.get(call.path["webhook"]))])


def webhook_delete(state: SandboxState, call: Call) -> Response:
    state.webhooks.delete(call.path["webhook"])
    return Response(status_code=204)


# -- users and groups -------------------------------------------------------------------------

_USER_FIELDS: dict[str, Callable[[SandboxUser], str | None]] = {
    "name": lambda u: u.name,
    "siteRole": lambda u: u.site_role,
    "email": lambda u: u.email,
    "friendlyName": lambda u: u.full_name,
}


def _users_page(users: list[SandboxUser], call: Call) -> Response:
    page, pagination = list_page(users, call.query, _USER_FIELDS)
    return ts_response([pagination, element("users", {}, *map(user_xml, page))])


def users_list(state: SandboxState, call: Call) -> Response:
    return _users_page(list(state.directory.users.values()), call)


def user_get(state: SandboxState, call: Call) -> Response:
    return ts_response([user_xml(state.directory.user(call.path["user"]))])


def users_add(state: SandboxState, call: Call) -> Response:
    node = required_child(parse_request(call.body), "user")
    if not node.get("name"):
        raise errors.bad_request("A user needs a name.")
    user = state.directory.add_user(
        node.get("name", ""), node.get("siteRole", "Unlicensed"), node.get("email")
    )
    return ts_response([user_xml(user)], status=201)


def groups_list(state: SandboxState, call: Call) -> Response:
    groups = list(state.directory.groups.values())
    page, pagination = list_page(groups, call.query, {"name": lambda g: g.name})
    return ts_response([pagination, element("groups", {}, *map(group_xml, page))])


def groups_create(state: SandboxState, call: Call) -> Response:
    node = required_child(parse_request(call.body), "group")
    if not node.get("name"):
        raise errors.bad_request("A group needs a name.")
    group = state.directory.add_group(node.get("name", ""), minimum_site_role=node.get("minimumSiteRole"))
    return ts_response([group_xml(group)], status=201)


def group_users(state: SandboxState, call: Call) -> Response:
    group = state.directory.group(call.path["group"])
    return _users_page([state.directory.users[u] for u in group.user_ids], call)


def group_add_user(state: SandboxState, call: Call) -> Response:
    node = required_child(parse_request(call.body), "user")
    user = state.directory.add_to_group(call.path["group"], node.get("id", ""))
    return ts_response([user_xml(user)])


def not_found(state: SandboxState, call: Call) -> Response:
    """Everything else, views included: the sandbox never serves them."""
    raise errors.not_found(errors.RESOURCE_NOT_FOUND, "The sandbox has no such resource.")


_SITE = "/api/{version}/sites/{site}"
_ROUTES: list[tuple[str, list[str], Handler, bool]] = [
    ("/api/{version}/serverInfo", ["GET"], server_info, True),
    ("/api/{version}/auth/signin", ["POST"], sign_in, True),
    ("/api/{version}/auth/signout", ["POST"], sign_out, True),
    (f"{_SITE}/projects", ["GET"], projects_list, False),
    (f"{_SITE}/projects", ["POST"], projects_create, False),
    (f"{_SITE}/datasources", ["GET"], datasources_list, False),
    (f"{_SITE}/datasources", ["POST"], datasource_publish, False),
    (f"{_SITE}/datasources/{{datasource}}", ["GET"], datasource_get, False),
    (f"{_SITE}/datasources/{{datasource}}", ["DELETE"], datasource_delete, False),
    (f"{_SITE}/datasources/{{datasource}}/connections", ["GET"], datasource_connections, False),
    (f"{_SITE}/datasources/{{datasource}}/content", ["GET"], datasource_content, False),
    (f"{_SITE}/datasources/{{datasource}}/data", ["PATCH"], datasource_update_data, False),
    (
        f"{_SITE}/datasources/{{datasource}}/connections/{{connection}}/data",
        ["PATCH"],
        datasource_update_data,
        False,
    ),
    (f"{_SITE}/datasources/{{datasource}}/refresh", ["POST"], datasource_refresh, False),
    (f"{_SITE}/fileUploads", ["POST"], upload_start, False),
    (f"{_SITE}/fileUploads/{{upload}}", ["PUT"], upload_append, False),
    (f"{_SITE}/jobs/{{job}}", ["GET"], job_get, False),
    (f"{_SITE}/webhooks", ["GET"], webhooks_list, False),
    (f"{_SITE}/webhooks", ["POST"], webhooks_create, False),
    (f"{_SITE}/webhooks/{{webhook}}", ["GET"], webhook_get, False),
    (f"{_SITE}/webhooks/{{webhook}}", ["DELETE"], webhook_delete, False),
    (f"{_SITE}/users", ["GET"], users_list, False),
    (f"{_SITE}/users", ["POST"], users_add, False),
    (f"{_SITE}/users/{{user}}", ["GET"], user_get, False),
    (f"{_SITE}/groups", ["GET"], groups_list, False),
    (f"{_SITE}/groups", ["POST"], groups_create, False),
    (f"{_SITE}/groups/{{group}}/users", ["GET"], group_users, False),
    (f"{_SITE}/groups/{{group}}/users", ["POST"], group_add_user, False),
]


def build_app(state: SandboxState) -> Starlette:
    """The ASGI app: Tableau's routes behind the traffic middleware (bytes, log, 429 faults)."""
    routes = [
        Route(path, _wrap(state, handler, public), methods=methods)
        for path, methods, handler, public in _ROUTES
    ]
    routes.append(
        Route(
            "/{rest:path}",
            _wrap(state, not_found, True),
            methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        )
    )
    app = Starlette(routes=routes)
    app.add_middleware(TrafficMiddleware, traffic=state.traffic)
    return app
