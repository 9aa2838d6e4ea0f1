from django.urls import path

from . import views

urlpatterns = [
    path("", views.page),
    path("api/json", views.api_json),
    path("form", views.form),
    path("error", views.error),
]
