"""Who may do what through the API.

Recognising (recognise, detect, embeddings, verify, jobs) needs an authenticated caller (a token
or the session). Members need Django's model permissions on ``members.Member``: view to read,
add to create (and bulk), change to add or delete faces and edit, delete to delete. Give them
to a user directly or through a group ("Member managers") in the admin.
"""

from __future__ import annotations

from rest_framework import permissions

MEMBER_PERMS = {
    "GET": "members.view_member",
    "HEAD": "members.view_member",
    "OPTIONS": "members.view_member",
    "POST": "members.add_member",
    "PUT": "members.change_member",
    "PATCH": "members.change_member",
    "DELETE": "members.delete_member",
}


class CanManageMembers(permissions.BasePermission):
    """Model permissions on Member; a view may name its own per-method map (``member_perms``)."""

    message = "Your account does not have the member-management permission for this action."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        perms = {**MEMBER_PERMS, **getattr(view, "member_perms", {})}
        needed = perms.get(request.method)
        return needed is not None and user.has_perm(needed)
