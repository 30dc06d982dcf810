from django.urls import path

from catalog import views

urlpatterns = [
    path("", views.home, name="home"),
    path("products/", views.products, name="products"),
    path("reports/", views.sales_report, name="reports"),
]
