"""Forms of the members pages. They check input only; the services do the work."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .models import Member


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several photos, each checked by its content (not its name) before anything is stored."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*", "multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        from faceengine.errors import EngineError
        from faceengine.images import load_image
        from facesite.engine import image_limits

        files = data if isinstance(data, (list, tuple)) else ([data] if data else [])
        if not files:
            raise forms.ValidationError("Choose at least one photo.", code="required")
        cleaned, errors = [], []
        for upload in files:
            upload = super().clean(upload, initial)
            if upload.size > settings.FACESITE_MAX_UPLOAD_BYTES:
                errors.append(
                    f"{upload.name} is {filesizeformat(upload.size)}; the limit is "
                    f"{filesizeformat(settings.FACESITE_MAX_UPLOAD_BYTES)}."
                )
                continue
            try:
                load_image(upload, image_limits())
            except EngineError as exc:
                errors.append(f"{upload.name}: {exc}")
                continue
            upload.seek(0)
            cleaned.append(upload)
        if errors:
            raise forms.ValidationError(errors)
        return cleaned


class EnrolForm(forms.Form):
    """A new member from photos, or photos added to a member (averaged in, or replacing)."""

    member = forms.ModelChoiceField(
        queryset=Member.objects.order_by("display_name", "id"),
        required=False,
        empty_label="— a new member —",
        label="Member",
        help_text="Leave as “a new member” and give a name to enrol someone new.",
    )
    display_name = forms.CharField(max_length=200, required=False, label="New member's name")
    mode = forms.ChoiceField(
        choices=[("average", "Add to their faces (average)"), ("replace", "Replace their faces")],
        initial="average",
        widget=forms.RadioSelect,
        label="For an existing member",
    )
    photos = MultipleFileField(label="Photos (one face each, the largest counts)")

    def clean(self):
        data = super().clean()
        if "display_name" in self.errors:
            return data  # the name was given but refused (too long): that error says it all
        if data.get("member") is None and not (data.get("display_name") or "").strip():
            self.add_error("display_name", "Give the new member's name, or choose a member.")
        if data.get("member") is not None and (data.get("display_name") or "").strip():
            self.add_error("display_name", "Choose a member or give a new name, not both.")
        return data
