"""Static reference data of the simulated chain: provinces and store sites, menu, names, promos.

Kept apart from the generative code so the world's vocabulary can grow without touching the model.
"""

from __future__ import annotations

from typing import NamedTuple

BRAND = "Kedai Nusantara"


# Indonesia's zones by their offset (none keeps daylight saving): WIB, WITA, WIT.
INDONESIAN_ZONES = {7: "Asia/Jakarta", 8: "Asia/Makassar", 9: "Asia/Jayapura"}


class Province(NamedTuple):
    name: str
    code: str
    utc_offset_hours: int  # WIB = +7, WITA = +8
    weight: float  # relative pull on sign-ups and orders
    sites: tuple[tuple[str, str], ...]  # (city, neighbourhood) in opening-priority order

    @property
    def timezone(self) -> str:
        """The IANA zone its stores keep, as a chain writes it in `[chain]`."""
        return INDONESIAN_ZONES[self.utc_offset_hours]


PROVINCES: tuple[Province, ...] = (
    Province(
        "DKI Jakarta",
        "JKT",
        7,
        1.4,
        (
            ("Jakarta Selatan", "Kemang"),
            ("Jakarta Pusat", "Menteng"),
            ("Jakarta Utara", "Kelapa Gading"),
            ("Jakarta Barat", "Puri Indah"),
            ("Jakarta Selatan", "Senayan"),
            ("Jakarta Timur", "Rawamangun"),
        ),
    ),
    Province(
        "Jawa Barat",
        "JBR",
        7,
        1.0,
        (
            ("Bandung", "Dago"),
            ("Bekasi", "Summarecon Bekasi"),
            ("Depok", "Margonda"),
            ("Bogor", "Pajajaran"),
            ("Bandung", "Braga"),
            ("Cirebon", "Kesambi"),
        ),
    ),
    Province(
        "Bali",
        "BAL",
        8,
        0.8,
        (
            ("Denpasar", "Renon"),
            ("Badung", "Seminyak"),
            ("Badung", "Canggu"),
            ("Gianyar", "Ubud"),
            ("Badung", "Jimbaran"),
            ("Denpasar", "Sanur"),
        ),
    ),
    Province(
        "Jawa Timur",
        "JTM",
        7,
        1.0,
        (
            ("Surabaya", "Darmo"),
            ("Surabaya", "Pakuwon"),
            ("Malang", "Ijen"),
            ("Sidoarjo", "Pondok Jati"),
            ("Surabaya", "Kenjeran"),
        ),
    ),
    Province(
        "Banten",
        "BTN",
        7,
        0.9,
        (
            ("Tangerang Selatan", "BSD City"),
            ("Tangerang Selatan", "Bintaro"),
            ("Tangerang", "Gading Serpong"),
            ("Serang", "Ciceri"),
        ),
    ),
    Province(
        "DI Yogyakarta",
        "YOG",
        7,
        0.7,
        (
            ("Yogyakarta", "Malioboro"),
            ("Sleman", "Seturan"),
            ("Yogyakarta", "Prawirotaman"),
            ("Sleman", "Jalan Kaliurang"),
        ),
    ),
    Province(
        "Jawa Tengah",
        "JTG",
        7,
        0.8,
        (
            ("Semarang", "Simpang Lima"),
            ("Surakarta", "Slamet Riyadi"),
            ("Semarang", "Tembalang"),
            ("Magelang", "Pecinan"),
        ),
    ),
    Province(
        "Sumatera Utara",
        "SUM",
        7,
        0.8,
        (
            ("Medan", "Kesawan"),
            ("Medan", "Setiabudi"),
            ("Medan", "Ringroad"),
            ("Binjai", "Binjai Kota"),
        ),
    ),
    Province(
        "Sulawesi Selatan",
        "SSL",
        8,
        0.6,
        (
            ("Makassar", "Losari"),
            ("Makassar", "Panakkukang"),
            ("Makassar", "Tanjung Bunga"),
            ("Gowa", "Sungguminasa"),
        ),
    ),
    Province(
        "Kalimantan Timur",
        "KTM",
        8,
        0.5,
        (
            ("Balikpapan", "Klandasan"),
            ("Samarinda", "Citra Niaga"),
            ("Balikpapan", "Sepinggan"),
            ("Samarinda", "Sungai Pinang"),
        ),
    ),
)


class Dish(NamedTuple):
    name: str
    category: str
    price_idr: int
    popularity: float  # relative chance of landing in a basket


CATEGORY_SKU_PREFIX = {
    "mains": "MAI",
    "rice_bowls": "RIC",
    "noodles": "NDL",
    "snacks": "SNK",
    "drinks": "DRK",
    "desserts": "DST",
}

MENU: tuple[Dish, ...] = (
    Dish("Nasi Goreng Kampung", "mains", 38_000, 3.0),
    Dish("Nasi Goreng Seafood", "mains", 52_000, 1.6),
    Dish("Ayam Bakar Madu", "mains", 48_000, 2.2),
    Dish("Ayam Penyet Sambal Ijo", "mains", 42_000, 2.4),
    Dish("Sate Ayam Madura (10 tusuk)", "mains", 45_000, 2.0),
    Dish("Sate Kambing (10 tusuk)", "mains", 65_000, 0.8),
    Dish("Rendang Sapi", "mains", 68_000, 1.5),
    Dish("Iga Bakar", "mains", 85_000, 0.7),
    Dish("Ikan Bakar Jimbaran", "mains", 78_000, 0.6),
    Dish("Gado-Gado", "mains", 32_000, 1.2),
    Dish("Soto Ayam Lamongan", "mains", 35_000, 1.6),
    Dish("Rawon Daging", "mains", 48_000, 0.9),
    Dish("Rice Bowl Ayam Sambal Matah", "rice_bowls", 39_000, 2.2),
    Dish("Rice Bowl Cakalang Rica", "rice_bowls", 42_000, 1.1),
    Dish("Nasi Bakar Cumi", "rice_bowls", 40_000, 1.0),
    Dish("Nasi Uduk Komplit", "rice_bowls", 36_000, 1.3),
    Dish("Nasi Campur Bali", "rice_bowls", 45_000, 1.2),
    Dish("Mie Goreng Jawa", "noodles", 35_000, 1.8),
    Dish("Mie Ayam Bakso", "noodles", 33_000, 1.7),
    Dish("Kwetiau Siram Sapi", "noodles", 40_000, 1.0),
    Dish("Mie Aceh Daging", "noodles", 42_000, 0.9),
    Dish("Tahu Crispy", "snacks", 18_000, 1.5),
    Dish("Tempe Mendoan", "snacks", 18_000, 1.4),
    Dish("Pisang Goreng Madu", "snacks", 20_000, 1.2),
    Dish("Risoles Mayo", "snacks", 22_000, 1.0),
    Dish("Lumpia Semarang", "snacks", 24_000, 0.8),
    Dish("Es Teh Manis", "drinks", 15_000, 3.5),
    Dish("Es Jeruk Peras", "drinks", 18_000, 2.0),
    Dish("Kopi Susu Gula Aren", "drinks", 25_000, 2.5),
    Dish("Jus Alpukat", "drinks", 28_000, 1.2),
    Dish("Teh Tarik", "drinks", 20_000, 1.3),
    Dish("Es Kelapa Muda", "drinks", 22_000, 1.1),
    Dish("Es Campur", "desserts", 28_000, 1.0),
    Dish("Klepon", "desserts", 20_000, 0.7),
    Dish("Martabak Manis Mini", "desserts", 32_000, 0.9),
    Dish("Pisang Bakar Keju", "desserts", 30_000, 0.8),
)

# Limited-time dishes launched one after another through the year; the list cycles.
SEASONAL: tuple[Dish, ...] = (
    Dish("Es Pisang Ijo", "desserts", 28_000, 1.5),
    Dish("Sop Buntut Bakar", "mains", 82_000, 1.2),
    Dish("Durian Pancake", "desserts", 35_000, 1.3),
    Dish("Nasi Liwet Komplit", "rice_bowls", 46_000, 1.5),
    Dish("Mie Celor Palembang", "noodles", 38_000, 1.2),
)

FIRST_NAMES: tuple[str, ...] = (
    "Adi", "Agus", "Andi", "Anisa", "Arief", "Ayu", "Bambang", "Bayu", "Budi", "Citra",
    "Dedi", "Dewi", "Dian", "Dimas", "Eka", "Fajar", "Fitri", "Gilang", "Hendra", "Indah",
    "Intan", "Joko", "Kartika", "Lestari", "Made", "Maya", "Nanda", "Nur", "Putri", "Rahmat",
    "Rina", "Rizky", "Sari", "Siti", "Surya", "Taufik", "Tri", "Wahyu", "Wayan", "Yuni",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Santoso", "Wijaya", "Pratama", "Saputra", "Hidayat", "Kusuma", "Halim", "Siregar",
    "Nasution", "Simanjuntak", "Gunawan", "Setiawan", "Lestari", "Wibowo", "Susanto",
    "Hartono", "Nugroho", "Rahman", "Harahap", "Lubis", "Tanjung", "Sihombing", "Panjaitan",
    "Tan", "Lim", "Wirawan", "Suryadi", "Hakim", "Maulana", "Ramadhan", "Firmansyah",
    "Kurniawan", "Permana", "Utomo", "Salim", "Budiman", "Sutanto", "Purnomo",
)  # fmt: skip

EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com",
    "yahoo.com",
    "yahoo.co.id",
    "outlook.com",
    "icloud.com",
)
EMAIL_DOMAIN_SHARE: tuple[float, ...] = (0.70, 0.12, 0.06, 0.07, 0.05)

# Indonesian mobile prefixes after +62 (Telkomsel, Indosat, XL, Tri, Smartfren).
MOBILE_PREFIXES: tuple[str, ...] = (
    "811", "812", "813", "821", "822", "852", "853", "814", "815", "816", "855", "856",
    "857", "858", "817", "818", "819", "859", "877", "878", "895", "896", "897", "898", "881",
)  # fmt: skip


class Promo(NamedTuple):
    code: str
    percent_off: int  # 0 for free delivery
    cap_idr: int
    min_subtotal_idr: int
    rule: str  # when it is offered, for the README and the truth file


PROMOS: tuple[Promo, ...] = (
    Promo("WELCOME20", 20, 30_000, 0, "a guest's first order"),
    Promo("HEMAT10", 10, 25_000, 50_000, "any day, subtotal of at least 50,000"),
    Promo("GRATISONGKIR", 0, 10_000, 0, "delivery orders: the fee, up to 10,000, is waived"),
    Promo("PAYDAY25", 25, 50_000, 0, "payday window, the 25th to the 1st of the month"),
)
