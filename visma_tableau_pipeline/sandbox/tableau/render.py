"""Sandbox records as the XML elements Tableau's REST API returns for them."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from visma_tableau_pipeline.sandbox.tableau.datasources import Datasource
from visma_tableau_pipeline.sandbox.tableau.directory import Directory, Group, Project, SandboxUser
from visma_tableau_pipeline.sandbox.tableau.jobs import Job
from visma_tableau_pipeline.sandbox.tableau.stamps import format_time
from visma_tableau_pipeline.sandbox.tableau.webhooks import Webhook, source_tag
from visma_tableau_pipeline.sandbox.tableau.xmlio import element


def user_xml(user: SandboxUser) -> ET.Element:
    return element(
        "user",
        {
            "id": user.id,
            "name": user.name,
            "siteRole": user.site_role,
            "email": user.email,
            "fullName": user.full_name,
            "authSetting": "ServerDefault",
        },
    )


def group_xml(group: Group) -> ET.Element:
    node = element("group", {"id": group.id, "name": group.name, "userCount": len(group.user_ids)})
    node.append(element("domain", {"name": "local"}))
    if group.minimum_site_role:
        node.append(element("import", {"siteRole": group.minimum_site_role}))
    return node


def project_xml(project: Project) -> ET.Element:
    return element(
        "project",
        {
            "id": project.id,
            "name": project.name,
            "description": project.description or "",
            "parentProjectId": project.parent_id,
            "contentPermissions": "ManagedByOwner",
            "topLevelProject": project.parent_id is None,
            "writeable": True,
            "createdAt": format_time(project.created_at),
            "updatedAt": format_time(project.created_at),
        },
        element("owner", {"id": project.owner_id}),
    )


def datasource_xml(datasource: Datasource, directory: Directory) -> ET.Element:
    project = directory.projects.get(datasource.project_id)
    owner = directory.users.get(datasource.owner_id)
    return element(
        "datasource",
        {
            "id": datasource.id,
            "name": datasource.name,
            "contentUrl": datasource.content_url,
            "type": "hyper",
            "description": datasource.description or "",
            "createdAt": format_time(datasource.created_at),
            "updatedAt": format_time(datasource.updated_at),
            "size": max(1, round(datasource.size_bytes / (1024 * 1024))),
            "isCertified": False,
            "encryptExtracts": False,
            "hasExtracts": True,
            "useRemoteQueryAgent": False,
            "webpageUrl": f"/#/site/{directory.site.content_url}/datasources/{datasource.id}",
        },
        element("project", {"id": datasource.project_id, "name": project.name if project else None}),
        element("owner", {"id": datasource.owner_id, "name": owner.name if owner else None}),
        element("tags"),
    )


def connection_xml(datasource: Datasource) -> ET.Element:
    return element(
        "connection",
        {"id": datasource.connection_id, "type": "hyper", "embedPassword": False, "serverAddress": ""},
        element("datasource", {"id": datasource.id, "name": datasource.name}),
    )


def job_xml(job: Job, complete: bool) -> ET.Element:
    detail = element("datasource", {"id": job.datasource_id, "name": job.datasource_name})
    node = element(
        "job",
        {
            "id": job.id,
            "mode": "Asynchronous",
            "type": job.type,
            "progress": 100 if complete else 0,
            "createdAt": format_time(job.created_at),
            "startedAt": format_time(job.created_at),
            "updatedAt": format_time(job.completes_at if complete else job.created_at),
            "completedAt": format_time(job.completes_at) if complete else None,
            "finishCode": job.finish_code if complete else None,
        },
        element(job.detail_tag, {}, detail),
    )
    if complete and job.notes:
        notes = element("notes")
        notes.text = job.notes
        node.find(job.detail_tag).append(notes)  # type: ignore[union-attr]
    return node


def webhook_xml(webhook: Webhook) -> ET.Element:
    return element(
        "webhook",
        {
            "id": webhook.id,
            "name": webhook.name,
            "isEnabled": True,
            "statusChangeReason": "",
            "event": webhook.event,
            "createdAt": format_time(webhook.created_at),
            "updatedAt": format_time(webhook.created_at),
        },
        element("webhook-source", {}, element(source_tag(webhook.event))),
        element(
            "webhook-destination",
            {},
            element("webhook-destination-http", {"method": "POST", "url": webhook.url}),
        ),
        element("owner", {"id": webhook.owner_id}),
    )
