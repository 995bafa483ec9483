"""manage.py create_api_token USERNAME: print a new API token for a user (shown only once)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import token_create


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print it. Only its hash is stored, so copy it now. "
        "Use it as 'Authorization: Token <token>'. Permissions come from the user (member "
        "management needs the members.* permissions)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username", help="The user the token acts as (must exist).")
        parser.add_argument("--name", default="api", help="What the token is for (shown in the admin).")

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: options["username"]})
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        _, plaintext = token_create(user=user, name=options["name"])
        self.stdout.write(plaintext)
