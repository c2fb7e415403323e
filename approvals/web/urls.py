from django.urls import path

from approvals.web import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("logout/", views.dashboard_logout, name="dashboard-logout"),
]
