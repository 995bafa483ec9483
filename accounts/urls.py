"""/accounts/: Django's log-in, log-out and password pages, the log-in throttled."""

from django.contrib.auth import urls as auth_urls
from django.urls import path

from .views import ThrottledLoginView

urlpatterns = [
    path("login/", ThrottledLoginView.as_view(), name="login"),
    *(pattern for pattern in auth_urls.urlpatterns if getattr(pattern, "name", None) != "login"),
]
