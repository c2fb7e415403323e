"""``/approve/<token>/``: the page a personal approval link opens (``approval_links``)."""

from django.urls import path

from approvals.web.approval_links import approval_link_page

urlpatterns = [
    path("<str:token>/", approval_link_page, name="approval-link"),
]
