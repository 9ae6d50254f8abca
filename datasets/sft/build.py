"""Build the support-ticket classification set: a training file and a held-out evaluation suite.

    python datasets/sft/build.py

writes
- ``datasets/sft/support_tickets.jsonl``: training examples in Alpaca format (``instruction``
  with the category list, ``input`` = the ticket, ``output`` = the category), tagged
  ``category:<name>``;
- ``datasets/suites/support_tickets_test.jsonl``: the held-out items (QA suite format,
  ``user_input`` = the same prompt a trained model sees, ``reference`` = the category), read
  by ``datasets/suites/support_tickets.yaml``.

The tickets are English (the small test model, smollm2-135m, is English-only), generated
from templates with varied slots (products, order numbers, amounts, days, devices) plus
optional openers, details and sign-offs. The output is deterministic. Template text makes
tickets similar to each other, so a candidate is kept only when its prompt's character
shingles (the ones ``finetune.data.dedup`` uses) have a Jaccard similarity below
``MAX_SIMILARITY`` with every ticket kept before it (found with the same MinHash index): then no training example is a near
duplicate of another or of a held-out item, and the leakage check of ``ladder finetune
prepare`` passes on this set with room to spare.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from finetune.data.dedup import MinHashIndex, shingles  # noqa: E402

SEED = 7
PER_CATEGORY = 60  # kept tickets per category
TEST_PER_CATEGORY = 15  # of which held out for the evaluation suite
MAX_SIMILARITY = 0.78  # below the default near-duplicate threshold of 0.85, with a margin
TRAIN_FILE = ROOT / "datasets" / "sft" / "support_tickets.jsonl"
TEST_FILE = ROOT / "datasets" / "suites" / "support_tickets_test.jsonl"

CATEGORIES = ("billing", "shipping", "returns", "technical", "account", "cancellation", "product_info",
              "feedback")  # fmt: skip
INSTRUCTION = (
    "Classify the customer support ticket into one of these categories: "
    + ", ".join(CATEGORIES)
    + ". Reply with the category name only."
)

SLOTS: dict[str, tuple[str, ...]] = {
    "product": ("wireless headphones", "coffee grinder", "standing desk", "rain jacket", "phone case",
                "yoga mat", "electric kettle", "hiking boots", "desk lamp", "blender", "backpack",
                "smart watch", "air purifier", "office chair", "bluetooth speaker", "winter coat",
                "running shoes", "water bottle", "mechanical keyboard", "baby stroller"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "device": ("iPhone", "Android phone", "iPad", "Windows laptop", "MacBook", "Chromebook", "tablet"),
    "feature": ("checkout page", "order history page", "search bar", "wishlist", "mobile app",
                "store locator", "gift card page", "product review form"),
    "plan": ("monthly subscription", "annual membership", "premium plan", "coffee subscription box",
             "weekly meal kit plan"),
    "color": ("black", "navy", "red", "grey", "green", "white", "beige"),
    "size": ("small", "medium", "large", "extra large", "size 8", "size 10"),
    "carrier": ("the courier", "the delivery driver", "the post office", "the parcel service"),
    "city": ("Denver", "Leeds", "Toronto", "Austin", "Dublin", "Perth", "Boston", "Glasgow"),
    "name": ("Maria", "James", "Aisha", "Tom", "Priya", "Lukas", "Chen", "Sofia", "Omar", "Hannah"),
}  # fmt: skip

TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for order #{order}. Please refund the duplicate payment of ${amount}.",
        "My credit card statement shows a charge of ${amount} that I don't recognise.",
        "The invoice for my last purchase lists the wrong VAT number, can you reissue it?",
        "Why did my bill go up by ${small} this month? Nobody told me about a price change.",
        "My payment keeps getting declined at checkout even though my card works everywhere else.",
        "I used a discount code but was still charged the full price of ${amount}.",
        "Can I switch the payment method on file from my debit card to PayPal?",
        "I need a receipt for order #{order} for my expense report.",
        "You charged me ${amount} on {day} for something I never ordered.",
        "The promised cashback of ${small} never appeared on my account statement.",
    ),
    "shipping": (
        "My order #{order} was supposed to arrive on {day} and it still hasn't come.",
        "The tracking number for my {product} hasn't updated in {days} days.",
        "{carrier} says the parcel was delivered but there is nothing at my door.",
        "I typed the wrong street in my address. Can you change where order #{order} ships to?",
        "How long does express delivery to {city} usually take?",
        "The package with my {product} is stuck at the sorting centre in {city}.",
        "Do you ship to {city}, and what does international delivery cost?",
        "Only half of my order arrived; the {product} is missing from the box.",
        "Can I pick a delivery slot? Nobody is home on {day} mornings.",
        "The delivery estimate keeps moving back, first {day} and now next week.",
    ),
    "returns": (
        "I'd like to return the {product} I bought, it doesn't fit my needs.",
        "The {product} arrived with a crack in it. How do I send it back?",
        "Can I exchange the {color} {product} for a different colour?",
        "The {size} is too tight. I want to swap it for a bigger size.",
        "I sent back order #{order} {days} days ago. Has the return been received?",
        "Where can I print a prepaid return label for my {product}?",
        "Is it too late to return something I bought {days} days ago?",
        "You sent me a {product} instead of what I ordered, I need to send it back.",
        "The return drop-off point in {city} refused my parcel, what now?",
        "Do I get my money back or store credit when I return the {product}?",
    ),
    "technical": (
        "The {feature} shows a blank white screen on my {device}.",
        "Your mobile app crashes every time I open it on my {device}.",
        "I get an error 500 when I click the button on the {feature}.",
        "The {feature} is extremely slow and times out after a minute.",
        "Images on the {feature} won't load in my browser, only broken icons.",
        "After the latest update the app freezes on the loading screen on my {device}.",
        "Notifications stopped working on my {device} since {day}.",
        "The {feature} keeps logging me out of the session while I'm in the middle of it.",
        "Your website layout is broken on my {device}, buttons overlap the text.",
        "The barcode scanner in the app doesn't recognise anything on my {device}.",
    ),
    "account": (
        "I forgot my password and the reset email never arrives.",
        "How do I change the email address linked to my account?",
        "Please delete my account and all the personal data you hold about me.",
        "I think someone else logged into my account from {city}.",
        "I lost my phone and can't get the two-factor code to sign in.",
        "Can I merge my two accounts? I accidentally registered twice.",
        "My account got locked after too many login attempts on {day}.",
        "Please change the name shown on my profile to {name}.",
        "How do I turn off the marketing emails in my account settings?",
        "The verification link in the sign-up email says it has expired.",
    ),
    "cancellation": (
        "Please cancel my {plan}, I don't want to be charged next month.",
        "I want to cancel order #{order} before it ships.",
        "How do I stop the automatic renewal of my {plan}?",
        "I placed order #{order} by mistake, please cancel it right away.",
        "Cancel my {plan} effective immediately, I'm moving abroad.",
        "I ordered the {product} an hour ago and changed my mind, can you cancel it?",
        "Can I pause my {plan} instead of cancelling it completely?",
        "I tried to cancel my {plan} online but the button does nothing.",
        "Please terminate my {plan} at the end of the current billing period.",
        "I no longer need the {product}, please call off the order before dispatch.",
    ),
    "product_info": (
        "Is the {product} available in {color}?",
        "Does the {product} come with a warranty, and for how long?",
        "What are the dimensions of the {product}? Will it fit in a small flat?",
        "Is the {product} waterproof enough for daily use in the rain?",
        "When will the {product} be back in stock?",
        "Is the {product} compatible with my {device}?",
        "What material is the {product} made of? I have allergies.",
        "Do you sell replacement parts for the {product}?",
        "How does the {product} compare to the previous model?",
        "Does the {product} run true to size or should I order a {size}?",
    ),
    "feedback": (
        "Just wanted to say the {product} is fantastic, thank you!",
        "Your support agent {name} was really helpful yesterday, please pass on my thanks.",
        "Suggestion: it would be great if the {feature} had a dark mode.",
        "I love the new packaging, much less plastic than before.",
        "The delivery driver in {city} was very friendly, great service.",
        "It would help if you added more colour options like {color}.",
        "Five stars for the {product}, it has worked perfectly for {days} days.",
        "Your {feature} redesign is much easier to use, well done.",
        "An idea: let customers save several delivery addresses.",
        "Compliments to the team, my order arrived a day early.",
    ),
}

OPENERS = ("", "", "Hi, ", "Hello, ", "Good morning. ", "Hi there! ", "Dear support team, ", "Hey, ")
DETAILS: dict[str, tuple[str, ...]] = {
    "billing": ("I've attached a screenshot of the statement.", "This is the second time this has happened.",
                "Please sort it out before my next billing date."),
    "shipping": ("I need it for a birthday this weekend.", "I've already checked with my neighbours.",
                 "The tracking page just says 'in transit'."),
    "returns": ("I still have the original box.", "I bought it on {day}.", "The tags are still attached."),
    "technical": ("I've already cleared the cache and restarted.", "It worked fine last week.",
                  "Other websites load normally."),
    "account": ("I've checked my spam folder too.", "My username is {name}{order}.",
                "I'd like this handled quickly for security reasons."),
    "cancellation": ("Please confirm by email.", "I don't need a refund for this month.",
                     "I've been a customer for {days} months."),
    "product_info": ("I'm thinking of buying it as a gift.", "The product page doesn't say.",
                     "I'd like to order this week if possible."),
    "feedback": ("Keep up the good work!", "No reply needed.", "I'll definitely shop with you again."),
}  # fmt: skip
CLOSERS = ("", "", " Thanks.", " Thank you!", " Regards, {name}", " Cheers, {name}", " Please help.")


def fill(template: str, rng: random.Random) -> str:
    values = {key: rng.choice(options) for key, options in SLOTS.items()}
    values.update(order=str(rng.randint(10000, 99999)), amount=f"{rng.randint(15, 400)}.{rng.randint(0, 99):02d}",
                  small=str(rng.randint(3, 25)), days=str(rng.randint(3, 20)))  # fmt: skip
    return template.format(**values)


def ticket(category: str, rng: random.Random) -> str:
    parts = [rng.choice(OPENERS) + fill(rng.choice(TEMPLATES[category]), rng)]
    if rng.random() < 0.5:
        parts.append(fill(rng.choice(DETAILS[category]), rng))
    text = " ".join(parts) + fill(rng.choice(CLOSERS), rng)
    return text[0].upper() + text[1:]


def prompt(text: str) -> str:
    """The user message a model sees: the same in training and in the suite."""
    return f"{INSTRUCTION}\n\n{text}"


def build() -> dict[str, list[str]]:
    rng = random.Random(SEED)
    kept: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    index = MinHashIndex(MAX_SIMILARITY)  # candidates by LSH, confirmed with the exact Jaccard
    attempts = 0
    while any(len(v) < PER_CATEGORY for v in kept.values()):
        attempts += 1
        if attempts > 100_000:
            raise SystemExit("templates too uniform: could not find enough distinct tickets")
        category = CATEGORIES[attempts % len(CATEGORIES)]
        if len(kept[category]) >= PER_CATEGORY:
            continue
        text = ticket(category, rng)
        grams = shingles(prompt(text))
        if index.similar(grams) is not None:
            continue
        kept[category].append(text)
        index.add(text, grams)
    return kept


def main() -> None:
    kept = build()
    rng = random.Random(SEED + 1)
    train_rows, test_rows = [], []
    for category, texts in kept.items():
        order = list(texts)
        rng.shuffle(order)
        for number, text in enumerate(order[:TEST_PER_CATEGORY], start=1):
            test_rows.append({"id": f"ticket-{category}-{number:02d}", "user_input": prompt(text),
                              "reference": category, "tags": [f"category:{category}"]})  # fmt: skip
        for text in order[TEST_PER_CATEGORY:]:
            train_rows.append({"instruction": INSTRUCTION, "input": text, "output": category,
                               "tags": [f"category:{category}"]})  # fmt: skip
    rng.shuffle(train_rows)
    rng.shuffle(test_rows)
    TRAIN_FILE.write_text("".join(json.dumps(r) + "\n" for r in train_rows), encoding="utf-8")
    TEST_FILE.write_text("".join(json.dumps(r) + "\n" for r in test_rows), encoding="utf-8")
    print(f"wrote {len(train_rows)} training examples to {TRAIN_FILE}")
    print(f"wrote {len(test_rows)} held-out items to {TEST_FILE}")


if __name__ == "__main__":
    main()
