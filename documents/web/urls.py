from django.urls import path

from documents.web import views

urlpatterns = [
    path("sign/<str:token>/", views.sign, name="sign"),
    path("sign/<str:token>/document.pdf", views.sign_document, name="sign-document"),
]
