"""API tokens in the admin: create one (the plaintext is shown once), list, revoke."""

from __future__ import annotations

from django.contrib import admin, messages

from . import services
from .forms import ThrottledAdminAuthenticationForm
from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "is_active", "created_at", "last_used_at")
    list_select_related = ("user",)
    list_filter = ("is_active",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    autocomplete_fields = ()
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name")
        return ("user", "name", "prefix", "is_active", "created_at", "last_used_at")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("user",) if obj else ())

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        row, plaintext = services.token_create(user=form.cleaned_data["user"], name=form.cleaned_data["name"])
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = row.pk, row.prefix, row.key_hash, row.created_at
        obj._state.adding, obj._state.db = False, row._state.db
        self.message_user(
            request, f"The new token (copy it now, it will not be shown again): {plaintext}", messages.WARNING
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        for pk in queryset.values_list("pk", flat=True):
            services.token_revoke(token=pk)
        self.message_user(request, "Tokens revoked.")


# The admin's log-in says why a throttled attempt is refused (accounts.backends refuses it anyway).
admin.site.login_form = ThrottledAdminAuthenticationForm
