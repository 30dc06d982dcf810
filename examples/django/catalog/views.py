from django.shortcuts import render

from . import reports, search
from .models import Product


def home(request):
    products = list(Product.objects.all()[:20])
    return render(
        request,
        "catalog/index.html",
        {"title": "Shop", "products": products, "indexed": len(search.index())},
    )


def products(request):
    term = request.GET.get("q", "abc")
    return render(
        request,
        "catalog/index.html",
        {
            "title": "Products",
            "products": Product.objects.filter(name__icontains=term[:20])[:20],
            "indexed": len(search.index()),
            "suggestions": search.suggestions(term),
        },
    )


def sales_report(request):
    counts = reports.buckets()
    return render(
        request,
        "catalog/index.html",
        {"title": f"Sales report ({sum(counts.values())} sales)", "products": [], "indexed": len(counts)},
    )
