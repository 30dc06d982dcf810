from django.core.management.base import BaseCommand

from catalog.models import Product

NAMES = ["Kettle", "Teapot", "Mug", "Grinder", "Scale", "Filter", "Carafe", "Tray"]


class Command(BaseCommand):
    help = "Primes the catalogue: creates the starter products once."

    def handle(self, *args, **options):
        created = 0
        for number, name in enumerate(NAMES, start=1):
            _, new = Product.objects.get_or_create(
                name=name, defaults={"price_cents": 500 * number}
            )
            created += new
        self.stdout.write(f"catalogue primed: {created} new, {Product.objects.count()} in all")
