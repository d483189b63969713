"""`multipart/mixed` bodies as TSC sends them (publish, file-upload chunks).

Starlette's form parser handles `multipart/form-data` only and needs an extra package; this reads
the parts directly. It works on bytes with `find`, so a 64 MB publish body is split in one pass.
"""

from __future__ import annotations

from visma_tableau_pipeline.sandbox.tableau import errors


def boundary_of(content_type: str) -> bytes:
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() not in ("multipart/mixed", "multipart/form-data"):
        raise errors.bad_request(
            f"Expected a multipart/mixed body; got content type '{media_type.strip()}'.", "406000"
        )
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    raise errors.bad_request("The multipart content type names no boundary.")


def parse_parts(body: bytes, content_type: str) -> dict[str, bytes]:
    """Part name (from Content-Disposition) → part body."""
    delimiter = b"--" + boundary_of(content_type)
    parts: dict[str, bytes] = {}
    position = body.find(delimiter)
    while position != -1:
        start = position + len(delimiter)
        if body[start : start + 2] == b"--":
            break
        header_end = body.find(b"\r\n\r\n", start)
        following = body.find(b"\r\n" + delimiter, header_end + 4) if header_end != -1 else -1
        if following == -1:
            raise errors.bad_request("The multipart body is truncated or malformed.")
        name = _part_name(body[start:header_end].decode("latin-1"))
        parts[name] = body[header_end + 4 : following]
        position = following + 2
    return parts


def _part_name(headers: str) -> str:
    for line in headers.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        for param in value.split(";"):
            pkey, _, pvalue = param.strip().partition("=")
            if pkey.lower() == "name":
                return pvalue.strip('"')
    raise errors.bad_request("A multipart part has no Content-Disposition name.")
