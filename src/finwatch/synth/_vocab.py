"""The simulator's vocabulary: places, currencies, merchant categories and names. Plain data, no logic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: currency code -> (AMLworld currency name, home country, units per 1 USD at the start of the period)
CURRENCIES: Final[dict[str, tuple[str, str, float]]] = {
    "USD": ("US Dollar", "US", 1.0),
    "EUR": ("Euro", "DE", 0.92),
    "GBP": ("UK Pound", "GB", 0.79),
    "CAD": ("Canadian Dollar", "CA", 1.36),
    "MXN": ("Mexican Peso", "MX", 17.1),
    "CNY": ("Yuan", "CN", 7.2),
    "INR": ("Rupee", "IN", 83.2),
    "PHP": ("Philippine Peso", "PH", 56.0),
    "CHF": ("Swiss Franc", "CH", 0.88),
    "AED": ("UAE Dirham", "AE", 3.67),
}
ETH_USD: Final = 3_100.0

CITIES: Final[dict[str, tuple[str, ...]]] = {
    "US": (
        "New York",
        "Los Angeles",
        "Chicago",
        "Houston",
        "Phoenix",
        "Miami",
        "Atlanta",
        "Las Vegas",
        "Seattle",
        "Denver",
    ),
    "DE": ("Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Stuttgart", "Dortmund", "Leipzig"),
    "GB": ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Liverpool", "Bristol", "Cardiff"),
    "CA": ("Toronto", "Montreal", "Vancouver", "Calgary", "Ottawa", "Winnipeg", "Halifax"),
    "MX": ("Mexico City", "Guadalajara", "Monterrey", "Tijuana", "Cancun", "Puebla"),
    "CN": ("Shanghai", "Beijing", "Shenzhen", "Guangzhou", "Chengdu", "Wuhan"),
    "IN": ("Mumbai", "Delhi", "Bengaluru", "Chennai", "Kolkata", "Hyderabad"),
    "PH": ("Manila", "Cebu", "Davao", "Quezon City", "Makati", "Iloilo"),
    "CH": ("Zurich", "Geneva", "Basel", "Bern", "Lausanne", "Lugano"),
    "AE": ("Dubai", "Abu Dhabi", "Sharjah"),
}


@dataclass(frozen=True)
class MerchantCategory:
    key: str
    mcc: str
    names: tuple[str, ...]
    median: float  # typical ticket in USD
    sigma: float  # log-normal spread
    share: float  # share of everyday card spending
    hours: str  # key into HOUR_PROFILES


MERCHANT_CATEGORIES: Final[tuple[MerchantCategory, ...]] = (
    MerchantCategory(
        "grocery",
        "5411",
        ("FreshMart", "Green Basket", "Daily Grocer", "Corner Market"),
        38,
        0.7,
        0.27,
        "day",
    ),
    MerchantCategory(
        "fast_food", "5814", ("Burger Barn", "Taco Town", "Quick Bite", "Noodle Box"), 11, 0.5, 0.17, "meal"
    ),
    MerchantCategory(
        "restaurant",
        "5812",
        ("Olive Table", "Harbor Grill", "Saffron House", "Blue Plate"),
        42,
        0.6,
        0.10,
        "meal",
    ),
    MerchantCategory("fuel", "5541", ("PetroStop", "Gas & Go", "Fuel Point"), 45, 0.4, 0.10, "day"),
    MerchantCategory("drug_store", "5912", ("CarePlus Pharmacy", "Wellness Drug", "MedCorner"), 24, 0.7, 0.08, "day"),
    MerchantCategory("clothing", "5651", ("Urban Threads", "Family Outfitters", "StyleHub"), 55, 0.7, 0.08, "day"),
    MerchantCategory("rideshare", "4121", ("RideNow", "CityCab", "Lift Share"), 18, 0.5, 0.06, "evening"),
    MerchantCategory("telecom", "4814", ("TelcoOne Mobile", "SkyWave Wireless"), 60, 0.3, 0.03, "day"),
    MerchantCategory("bus", "4131", ("Greyline Bus", "InterCity Coach"), 45, 0.5, 0.015, "day"),
    MerchantCategory("airline", "4511", ("SkyJet Airlines", "Continental Air", "BlueWing Air"), 310, 0.5, 0.01, "day"),
    MerchantCategory(
        "lodging",
        "7011",
        ("Sunrise Motel", "Budget Inn", "Grand Plaza Hotel", "Roadside Lodge", "Harbor Suites"),
        130,
        0.4,
        0.015,
        "evening",
    ),
    MerchantCategory(
        "online_ads",
        "7311",
        ("ListCrawl Classifieds", "NightAds Online", "QuickPost Ads", "CityPersonals Hosting"),
        25,
        0.5,
        0.004,
        "night",
    ),
    MerchantCategory(
        "prepaid_cards",
        "6540",
        ("ReloadIt Prepaid", "GiftCard Kiosk", "PayLoad Cards"),
        150,
        0.5,
        0.004,
        "day",
    ),
    MerchantCategory("utilities", "4900", ("City Power & Water", "Metro Gas Utility"), 95, 0.4, 0.0, "day"),
)
CATEGORY: Final[dict[str, MerchantCategory]] = {c.key: c for c in MERCHANT_CATEGORIES}
CRYPTO_EXCHANGE_MCC: Final = "6051"
CRYPTO_EXCHANGES: Final[tuple[str, ...]] = ("Krakenly Exchange", "CoinHarbor", "BitVault Markets")

#: hour-of-day weights (24 values, local time treated as UTC) for each activity profile
HOUR_PROFILES: Final[dict[str, tuple[float, ...]]] = {
    "day": (0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 1, 2, 3, 4, 5, 6, 7, 6, 5, 5, 6, 7, 7, 5, 3, 2, 1, 0.5),
    "meal": (0.3, 0.2, 0.1, 0.1, 0.1, 0.3, 1, 3, 3, 2, 2, 6, 9, 7, 3, 2, 3, 6, 9, 8, 5, 3, 1, 0.6),
    "evening": (1, 0.6, 0.4, 0.2, 0.2, 0.3, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 5, 6, 7, 7, 6, 4, 2),
    "office": (0, 0, 0, 0, 0, 0, 0.2, 1, 4, 7, 8, 8, 6, 7, 8, 8, 7, 4, 1, 0.3, 0.1, 0, 0, 0),
    "night": (8, 7, 6, 4, 2, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8),
    "flat": (1,) * 24,
}

FIRST_NAMES: Final[tuple[str, ...]] = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Maria",
    "Wei",
    "Mei",
    "Arjun",
    "Priya",
    "Jose",
    "Ana",
    "Luis",
    "Sofia",
    "Ahmed",
    "Fatima",
    "Olga",
    "Ivan",
    "Grace",
    "Daniel",
    "Nora",
    "Kevin",
    "Laura",
    "Hiroshi",
    "Yuki",
    "Chen",
)
LAST_NAMES: Final[tuple[str, ...]] = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Nguyen",
    "Patel",
    "Kim",
    "Wang",
)
BUSINESS_WORDS: Final[tuple[str, ...]] = (
    "Summit",
    "Pioneer",
    "Atlas",
    "Harbor",
    "Keystone",
    "Evergreen",
    "Silverline",
    "Northgate",
    "Bluewater",
    "Ironwood",
    "Crescent",
    "Meridian",
    "Granite",
    "Lakeside",
    "Redwood",
    "Horizon",
    "Cobalt",
    "Sterling",
    "Oakmont",
    "Riverside",
    "Vertex",
    "Beacon",
    "Cedar",
    "Falcon",
)
BUSINESS_TRADES: Final[tuple[str, ...]] = (
    "Logistics",
    "Construction",
    "Consulting",
    "Supplies",
    "Wholesale",
    "Trading",
    "Services",
    "Manufacturing",
    "Imports",
    "Holdings",
    "Staffing",
    "Cleaning",
    "Landscaping",
    "Auto Repair",
    "Printing",
    "Software",
)
SHELL_SUFFIXES: Final[tuple[str, ...]] = (
    "Holdings Ltd",
    "Global Trading LLC",
    "Ventures Inc",
    "Capital Partners",
    "International SA",
    "Commerce Ltd",
)
CASH_FRONT_KINDS: Final[tuple[tuple[str, str, str], ...]] = (
    # (kind, mcc, name suffix)
    ("massage", "7297", "Massage Spa"),
    ("nail_salon", "7230", "Nail Salon"),
    ("restaurant", "5812", "Restaurant"),
    ("laundromat", "7211", "Laundromat"),
)

#: customer data of the banks' own clients (evidently invented: streets no map has)
SYNTHETIC_STREETS: Final[tuple[str, ...]] = (
    "Example Street",
    "Sample Avenue",
    "Test Road",
    "Placeholder Lane",
    "Demo Boulevard",
    "Fictional Way",
    "Specimen Drive",
    "Imaginary Court",
)
OCCUPATIONS: Final[tuple[str, ...]] = (
    "Teacher",
    "Nurse",
    "Software developer",
    "Retail assistant",
    "Electrician",
    "Accountant",
    "Truck driver",
    "Chef",
    "Engineer",
    "Sales representative",
    "Construction worker",
    "Pharmacist",
    "Self-employed",
    "Homemaker",
)
MULE_OCCUPATIONS: Final[tuple[str, ...]] = ("Student", "Unemployed", "Delivery rider", "Warehouse worker")
#: a business's activity by its industry code (ISO 18245)
ACTIVITIES: Final[dict[str, str]] = {
    "7361": "Employment agency",
    "1520": "General contractor",
    "8742": "Management consulting",
    "5045": "Computer equipment wholesale",
    "4214": "Trucking and courier services",
    "6799": "Investment holding",
    "7297": "Massage spa",
    "7230": "Nail salon",
    "5812": "Restaurant",
    "7211": "Laundromat",
    "6051": "Crypto-asset exchange",
    "5411": "Grocery store",
    "5814": "Fast-food restaurant",
    "5541": "Fuel station",
    "5912": "Pharmacy",
    "5651": "Clothing store",
    "4121": "Ride-hailing service",
    "4814": "Mobile telecommunications",
    "4131": "Coach line",
    "4511": "Airline",
    "7011": "Hotel",
    "7311": "Online advertising",
    "6540": "Prepaid card issuer",
    "4900": "Utility",
}
#: a regular business's activity by the trade in its name (BUSINESS_TRADES; a trade not listed is its own activity)
TRADE_ACTIVITIES: Final[dict[str, str]] = {
    "Consulting": "Management consulting",
    "Supplies": "Office supplies",
    "Wholesale": "Wholesale trade",
    "Trading": "General trading",
    "Services": "Business services",
    "Imports": "Import and export",
    "Holdings": "Holding company",
    "Staffing": "Employment agency",
    "Cleaning": "Commercial cleaning",
    "Auto Repair": "Car repair",
    "Software": "Software development",
}
