"""Wording for the sample world: names, support tickets, call transcripts, MEDDPICC notes.

Everything here is data plus small renderers. Randomness always comes from the caller (pre-drawn
integer rows), so wording is deterministic by seed. Call sentences are rendered once into pools
(template × slot fills, with a fixed seed) and referenced by index, so a large world shares string
objects instead of holding millions of copies.

The wording is designed to be *learnable*: a ticket's product feature and severity are inferable
from its subject and description (with realistic noise: mixed mentions, understated customers), and
a call's customer sentences carry its sentiment and topics.
"""

from __future__ import annotations

import numpy as np

VENDOR = "Beacon"
VENDOR_DOMAIN = "lumenary.io"

FEATURES = (
    "Dashboards",
    "Automation",
    "Integrations",
    "Reporting",
    "Billing",
    "User Management",
    "API",
    "Mobile",
)
TOPICS = (
    "Pricing",
    "Onboarding",
    "Integrations",
    "Reporting",
    "Renewal",
    "Support",
    "Roadmap",
    "Competition",
)
COMPETITORS = ("Tableau", "Looker", "Clari", "Gainsight", "Domo", "Sisense", "ChurnZero", "Totango")
INTEGRATIONS = ("Salesforce", "HubSpot", "Slack", "Snowflake", "Zapier", "BigQuery", "Jira", "Zendesk")
TEAMS = ("sales", "finance", "marketing", "operations", "support", "RevOps", "leadership", "customer success")
PLANS = ("Starter", "Growth", "Scale")
QUARTERS = ("Q1", "Q2", "Q3", "Q4")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip
FEATURE_PHRASE = {
    "Dashboards": "dashboards",
    "Automation": "automation",
    "Integrations": "integrations",
    "Reporting": "reporting",
    "Billing": "billing",
    "User Management": "user management",
    "API": "the API",
    "Mobile": "the mobile app",
}

INDUSTRIES = (
    "Technology", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Education",
    "Media", "Logistics", "Energy", "Real Estate", "Hospitality", "Telecommunications",
    "Insurance", "Consulting", "Nonprofit", "Government",
)  # fmt: skip
INDUSTRY_WEIGHTS = np.array([22, 12, 10, 9, 8, 5, 5, 6, 3, 4, 3, 4, 4, 5, 2, 2], dtype=float)
COUNTRIES = ("United States", "United Kingdom", "Germany", "Canada", "France", "Australia",
             "Netherlands", "Sweden", "Spain", "Ireland", "Singapore", "Brazil", "Japan", "India")  # fmt: skip
COUNTRY_WEIGHTS = np.array([48, 11, 7, 7, 5, 4, 3, 2, 2, 2, 2, 3, 2, 2], dtype=float)

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily",
    "Andrew", "Michelle", "Paul", "Amanda", "Joshua", "Melissa", "Kevin", "Deborah", "Brian", "Laura",
    "George", "Rebecca", "Timothy", "Sharon", "Ryan", "Cynthia", "Jason", "Kathleen", "Jacob", "Amy",
    "Gary", "Angela", "Nicholas", "Anna", "Eric", "Brenda", "Jonathan", "Emma", "Stephen", "Olivia",
    "Larry", "Nicole", "Justin", "Rachel", "Scott", "Maria", "Brandon", "Katherine", "Samuel", "Samantha",
    "Benjamin", "Christine", "Gregory", "Hannah", "Alexander", "Victoria", "Patrick", "Priya", "Raj",
    "Wei", "Mei", "Hiroshi", "Yuki", "Carlos", "Sofia", "Diego", "Lucia", "Ahmed", "Fatima", "Omar",
    "Aisha", "Lars", "Ingrid", "Pierre", "Camille", "Lukas", "Lena", "Mateo", "Valentina", "Noah",
    "Chloe", "Ethan", "Grace", "Liam", "Zoe", "Arjun", "Ananya", "Kofi", "Amara", "Sven", "Freya",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis",
    "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill",
    "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
    "Roberts", "Patel", "Shah", "Kumar", "Singh", "Chen", "Wang", "Li", "Zhang", "Tanaka", "Suzuki",
    "Kim", "Park", "Muller", "Schmidt", "Schneider", "Fischer", "Dubois", "Moreau", "Rossi", "Bianchi",
    "Silva", "Santos", "Costa", "Novak", "Kowalski", "Johansson", "Larsen", "Nielsen", "OBrien",
    "Murphy", "Kelly", "Walsh", "Byrne", "Okafor", "Mensah", "Haddad", "Khan", "Ali", "Cohen", "Levi",
    "Ivanova", "Petrov", "Yilmaz", "Demir", "Fernandez", "Ortiz", "Morales", "Reyes", "Cruz", "Gomez",
)  # fmt: skip
NAME_ADJ = (
    "Blue", "Red", "Silver", "Golden", "Bright", "Swift", "North", "South", "East", "West", "Summit",
    "Granite", "Cedar", "Pine", "Maple", "Oak", "Iron", "Copper", "Crystal", "Clear", "Prime", "Nova",
    "Apex", "Vertex", "Lunar", "Solar", "Polar", "Coastal", "Harbor", "River", "Lake", "Stone", "Bold",
    "True", "Open", "Quantum", "Atomic", "Vivid", "Rapid", "Steady", "Evergreen", "Redwood", "Aspen",
    "Sierra", "Alpine", "Meridian", "Pacific", "Atlantic", "Urban", "Metro", "Global", "United",
    "Pioneer", "Frontier", "Keystone", "Liberty", "Horizon", "Zenith", "Orbit", "Signal", "Beacon",
    "Falcon", "Eagle", "Hawk", "Wolf", "Fox", "Bear", "Lion", "Tiger", "Otter", "Raven", "Cobalt",
    "Indigo", "Scarlet", "Amber", "Jade", "Onyx", "Ivory", "Sage", "Juniper", "Willow", "Birch",
    "Elm", "Hazel", "Ember", "Spark", "Flux", "Pulse", "Echo", "Arc", "Helix", "Vector", "Matrix",
)  # fmt: skip
NAME_NOUN = (
    "Labs", "Systems", "Networks", "Dynamics", "Analytics", "Logistics", "Health", "Capital", "Foods",
    "Energy", "Robotics", "Software", "Media", "Works", "Partners", "Ventures", "Solutions", "Data",
    "Cloud", "Bio", "Pharma", "Motors", "Textiles", "Retail", "Brands", "Studios", "Freight", "Foundry",
    "Supply", "Markets", "Learning", "Insurance", "Finance", "Payments", "Security", "Devices",
    "Materials", "Chemicals", "Construction", "Properties", "Hotels", "Travel", "Telecom", "Wireless",
    "Apparel", "Outdoors", "Gaming", "Sports", "Clinics", "Diagnostics", "Genomics", "Agritech",
    "Marine", "Aerospace", "Metals", "Paper", "Print", "Design", "Engineering", "Consulting",
)  # fmt: skip
NAME_SUFFIX = ("Inc", "LLC", "Ltd", "Corp", "Group", "Co", "GmbH", "PLC", "Holdings", "International")

USER_TITLES = {
    "AE": ("Account Executive", "Senior Account Executive", "Enterprise Account Executive"),
    "CSM": ("Customer Success Manager", "Senior Customer Success Manager", "Strategic CSM"),
    "SE": ("Solutions Engineer", "Senior Solutions Engineer"),
}
CONTACT_TITLES = {
    "champion": ("Director of Revenue Operations", "Head of Sales Operations", "RevOps Manager",
                 "Director of Business Intelligence", "Head of Analytics", "Sales Operations Manager"),
    "economic_buyer": ("Chief Financial Officer", "VP of Sales", "Chief Revenue Officer", "VP Finance",
                       "Chief Operating Officer", "VP of Operations"),
    "admin": ("Systems Administrator", "Salesforce Administrator", "IT Manager", "Business Systems Analyst",
              "Data Engineer"),
    "user": ("Sales Manager", "Account Manager", "Financial Analyst", "Marketing Manager", "Support Lead",
             "Customer Success Lead", "Operations Analyst", "Sales Representative"),
}  # fmt: skip


def _pick(seq, k: int):
    return seq[k % len(seq)]


# ----------------------------------------------------------------------------------------------
# Support tickets
# ----------------------------------------------------------------------------------------------

TICKET_VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "Dashboards": {
        "obj": ("dashboard", "dashboard widget", "chart tile", "KPI tile", "dashboard filter",
                "shared dashboard", "executive dashboard", "pipeline dashboard", "dashboard layout"),
        "bad": ("is not loading", "shows stale numbers", "renders blank", "times out on refresh",
                "shows the wrong date range", "lost its layout", "is extremely slow to refresh"),
        "minor": ("has misaligned labels", "uses the wrong color on one tile", "truncates long titles",
                  "shows a tooltip in the wrong place"),
        "task": ("share a dashboard with an external stakeholder", "add a custom filter to a dashboard",
                 "pin a chart to the home dashboard", "set a default date range on a dashboard",
                 "clone a dashboard for another team"),
        "req": ("drill-down from dashboard tiles", "dashboard folders", "conditional colors on KPI tiles",
                "dark mode for dashboards", "auto-refresh for wall-mounted dashboards"),
    },
    "Automation": {
        "obj": ("workflow", "automation rule", "scheduled trigger", "approval flow", "alert rule",
                "workflow step", "automation sequence"),
        "bad": ("is not firing", "runs twice for every record", "stopped triggering", "fails silently",
                "skips records", "fires on the wrong condition"),
        "minor": ("has a confusing label in the builder", "shows the wrong run count",
                  "has a typo in the notification text"),
        "task": ("build a workflow that assigns leads by territory", "pause an automation rule temporarily",
                 "chain two workflows together", "trigger an alert when a deal stalls"),
        "req": ("branching logic in workflows", "a dry-run mode for automation rules",
                "version history for workflows", "more trigger types in the automation builder"),
    },
    "Integrations": {
        "obj": ("Salesforce sync", "HubSpot integration", "Slack integration", "Snowflake connector",
                "Zapier connection", "BigQuery export", "Jira integration", "CRM sync"),
        "bad": ("stopped syncing", "is duplicating records", "fails with an authentication error",
                "drops custom fields", "is hours behind", "keeps disconnecting"),
        "minor": ("shows an outdated logo", "has a confusing field mapping label",
                  "reports the wrong last-sync time"),
        "task": ("map custom fields in the Salesforce sync", "reconnect the HubSpot integration",
                 "send alerts to a Slack channel", "limit which objects the CRM sync pulls"),
        "req": ("a Microsoft Teams integration", "bi-directional sync for custom objects",
                "a native Snowflake write-back", "field-level sync filters"),
    },
    "Reporting": {
        "obj": ("scheduled report", "CSV export", "PDF report", "report builder", "pivot report",
                "monthly board report", "forecast report"),
        "bad": ("has wrong totals", "is not being delivered", "fails to generate", "exports empty files",
                "double-counts revenue", "cuts off rows"),
        "minor": ("uses the wrong number format", "has a misaligned header", "shows an extra blank page"),
        "task": ("schedule a weekly report to finance", "add a calculated column to a report",
                 "export a report to Excel", "group a report by quarter"),
        "req": ("report templates for board meetings", "Excel-native exports with formulas",
                "report subscriptions per team", "cohort reports"),
    },
    "Billing": {
        "obj": ("invoice", "payment method", "credit card charge", "seat count on our invoice",
                "billing contact", "VAT number on the invoice", "subscription renewal charge"),
        "bad": ("was charged twice", "shows the wrong amount", "failed to process", "bills for removed seats",
                "has the wrong legal entity"),
        "minor": ("has a typo in our address", "shows the old billing contact", "uses the wrong PO number"),
        "task": ("update the credit card on file", "download past invoices", "change the billing contact",
                 "switch to annual billing"),
        "req": ("consolidated invoicing across workspaces", "invoices in EUR", "self-serve seat management",
                "usage breakdown on invoices"),
    },
    "User Management": {
        "obj": ("SSO login", "SAML configuration", "user invitation", "role permissions",
                "SCIM provisioning", "password reset", "team membership"),
        "bad": ("locks users out", "fails for new employees", "grants admin rights to everyone",
                "does not deprovision leavers", "rejects valid credentials"),
        "minor": ("shows the wrong avatar", "has a confusing role description", "lists inactive users"),
        "task": ("set up SAML with Okta", "bulk invite users from a CSV", "create a read-only role",
                 "transfer ownership when someone leaves"),
        "req": ("custom roles", "an audit log of permission changes", "group-based provisioning",
                "session timeout settings"),
    },
    "API": {
        "obj": ("REST API", "API token", "webhook", "bulk export endpoint", "API rate limit",
                "GraphQL endpoint", "API pagination"),
        "bad": ("returns 500 errors", "rejects valid tokens", "returns 429 constantly", "drops webhook events",
                "times out on large requests", "returns incomplete pages"),
        "minor": ("has a typo in the docs", "returns an inconsistent date format", "has an outdated example"),
        "task": ("paginate through the accounts endpoint", "rotate an API token", "verify webhook signatures",
                 "raise our API rate limit"),
        "req": ("a Python SDK", "webhook retries with backoff", "a sandbox environment for the API",
                "bulk write endpoints"),
    },
    "Mobile": {
        "obj": ("iOS app", "Android app", "mobile push notifications", "mobile login", "mobile dashboard view",
                "offline mode on mobile"),
        "bad": ("crashes on launch", "will not sync", "drains the battery", "logs users out constantly",
                "shows a blank screen"),
        "minor": ("has a clipped button on small screens", "shows the wrong icon", "has a slow animation"),
        "task": ("enable push notifications", "use the mobile app with SSO", "download reports on mobile",
                 "switch workspaces in the app"),
        "req": ("an iPad layout", "widgets for the home screen", "offline editing", "biometric login"),
    },
}  # fmt: skip

SEVERITIES = ("Low", "Medium", "High", "Critical")

_PROBLEM_SUBJECT = {
    "Critical": ("URGENT: {Obj} down for all users", "P1 - {Obj} {bad} in production",
                 "Outage: {obj} {bad}, whole team blocked", "CRITICAL - {obj} completely unavailable",
                 "Emergency: {obj} {bad} and nobody can work"),
    "High": ("{Obj} {bad} for many users", "Major issue: {obj} {bad}", "{Obj} broken since this morning",
             "Serious problem - {obj} {bad}", "{Obj} {bad}, need help today"),
    "Medium": ("{Obj} {bad} intermittently", "Problem with {obj}", "{Obj} sometimes {bad}",
               "Issue: {obj} {bad} now and then", "{Obj} acting up"),
    "Low": ("Minor: {obj} {minor}", "Small glitch - {obj} {minor}", "Cosmetic issue with {obj}",
            "Low priority: {obj} {minor}", "Nitpick about the {obj}"),
}  # fmt: skip
_PROBLEM_OPEN = {
    "Critical": ("Since {when} the {obj} {bad} for every user in our org.",
                 "Our {obj} {bad} and the entire {team} team is blocked.",
                 "We are completely down: the {obj} {bad}."),
    "High": ("Since {when} the {obj} {bad} for about {n} of our users.",
             "The {obj} {bad} and it is affecting a large part of the {team} team.",
             "We noticed the {obj} {bad} across several teams."),
    "Medium": ("Every now and then the {obj} {bad}.", "A few times this week the {obj} {bad}.",
               "We have seen the {obj} {bad} on and off since {when}."),
    "Low": ("Not a big deal, but the {obj} {minor}.", "Small thing: the {obj} {minor}.",
            "We noticed the {obj} {minor}."),
}  # fmt: skip
_IMPACT = {
    "Critical": ("This is a production outage for us and we cannot operate.",
                 "Nobody in the company can do their job right now, please escalate immediately.",
                 "We have a board meeting in {n} hours and need this fixed now.",
                 "This is blocking revenue-critical work, treat it as an emergency.",
                 "All users are affected. Please call me as soon as possible."),
    "High": ("This is significantly impacting the {team} team and we need a fix today.",
             "Month-end close depends on this, so it is a major problem for us.",
             "Many users are affected and the workaround is not sustainable.",
             "Please prioritise this, it is slowing the whole {team} team down."),
    "Medium": ("Refreshing usually helps, but it is annoying.", "We found a workaround but it is tedious.",
               "Not urgent, but we would like this resolved this week.",
               "It only affects some users, but it keeps coming back."),
    "Low": ("Low priority, just flagging it.", "No impact on our work, whenever you get a chance.",
            "Purely cosmetic, no rush at all.", "Not blocking anything."),
}  # fmt: skip
_QUESTION_SUBJECT = ("How do I {task}?", "Question about the {obj}", "Is it possible to {task}?",
                     "Help needed: {task}", "Best way to {task}?")  # fmt: skip
_QUESTION_BODY = ("Could you explain how to {task}? I could not find it in the docs.",
                  "We are trying to {task} for the {team} team. What is the recommended approach?",
                  "Quick question about the {obj}: is there a way to {task}?",
                  "Our admin asked whether we can {task}. Any guidance appreciated.")  # fmt: skip
_REQUEST_SUBJECT = ("Feature request: {req}", "Would love {req}", "Suggestion - {req}", "Request for {req}",
                    "Idea: {req}")  # fmt: skip
_REQUEST_BODY = ("It would be great if you supported {req}.", "The {team} team keeps asking for {req}.",
                 "Please consider adding {req} to the roadmap.",
                 "We would use {req} every day if it existed.")  # fmt: skip
_URGENCY = {
    "Critical": ("This is blocking our rollout to the {team} team, we need an answer urgently.",
                 "Our go-live is tomorrow and this is a blocker."),
    "High": ("This is important for our expansion plans, please prioritise.",
             "We need this soon, it is holding up the {team} team."),
    "Medium": ("Would be helpful to know in the next week or so.", "Some of the team is waiting on this."),
    "Low": ("No rush, just curious.", "Nice to have, whenever you get to it."),
}  # fmt: skip
_WHEN = ("this morning", "yesterday", "last night", "the last release", "Monday", "the weekend")
_SIGNOFF = ("Thanks,", "Thanks in advance,", "Best regards,", "Cheers,", "Regards,")

CANCEL_SUBJECTS = ("Cancel our subscription", "Cancellation request", "Please do not renew our plan",
                   "Close our account at the end of this billing period")  # fmt: skip
CANCEL_BODIES = ("We have decided to cancel our subscription. Please stop billing our card.",
                 "Please cancel our plan effective at the end of the current billing period.",
                 "We are moving to another tool and want to close our account and billing.",
                 "Budget cuts mean we have to cancel. Please confirm the billing cancellation.")  # fmt: skip


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def render_ticket(
    feature: str, severity: str, kind: str, r: list[int], mention: str | None, signer: str = ""
) -> tuple[str, str]:
    """Subject and description of one support ticket.

    ``kind`` is Problem / Question / Feature Request; ``r`` is a list of >= 12 pre-drawn ints;
    ``mention`` optionally names a second feature area mentioned in passing (realistic noise).
    """
    v = TICKET_VOCAB[feature]
    obj = _pick(v["obj"], r[0])
    slots = {
        "obj": obj,
        "Obj": _cap(obj),
        "bad": _pick(v["bad"], r[1]),
        "minor": _pick(v["minor"], r[2]),
        "task": _pick(v["task"], r[3]),
        "req": _pick(v["req"], r[4]),
        "team": _pick(TEAMS, r[5]),
        "n": 2 + r[6] % 60 if severity != "Critical" else 1 + r[6] % 4,
        "when": _pick(_WHEN, r[7]),
    }
    if kind == "Problem":
        subject = _pick(_PROBLEM_SUBJECT[severity], r[8]).format(**slots)
        body = [
            _pick(_PROBLEM_OPEN[severity], r[9]).format(**slots),
            _pick(_IMPACT[severity], r[10]).format(**slots),
        ]
    elif kind == "Question":
        subject = _pick(_QUESTION_SUBJECT, r[8]).format(**slots)
        body = [_pick(_QUESTION_BODY, r[9]).format(**slots), _pick(_URGENCY[severity], r[10]).format(**slots)]
    else:
        subject = _pick(_REQUEST_SUBJECT, r[8]).format(**slots)
        body = [_pick(_REQUEST_BODY, r[9]).format(**slots), _pick(_URGENCY[severity], r[10]).format(**slots)]
    if mention is not None:
        other = _pick(TICKET_VOCAB[mention]["obj"], r[11])
        body.append(f"Possibly related to the {other}, not sure.")
    body.append(f"{_pick(_SIGNOFF, r[11] // 7)} {signer}".rstrip())
    return subject, " ".join(body)


def render_cancellation(r: list[int], signer: str = "") -> tuple[str, str]:
    return _pick(
        CANCEL_SUBJECTS, r[0]
    ), f"{_pick(CANCEL_BODIES, r[1])} {_pick(_SIGNOFF, r[2])} {signer}".rstrip()


# ----------------------------------------------------------------------------------------------
# Call transcripts
# ----------------------------------------------------------------------------------------------

TONES = ("positive", "neutral", "negative")

_CUSTOMER: dict[tuple[str, str], tuple[str, ...]] = {
    ("Pricing", "positive"): (
        "Honestly the pricing feels fair for the value we're getting.",
        "Budget-wise we're in good shape, finance already signed off on the {team} expansion.",
        "It pays for itself, we cut about {hours} hours of manual work a week.",
        "We're fine with the renewal number, it's in line with what we planned.",
        "If the volume discount holds we'd happily add another {n} seats.",
    ),
    ("Pricing", "neutral"): (
        "Can you send over the pricing for the {plan} tier?",
        "We need to understand how seat pricing works if we add {n} users.",
        "Finance will want a breakdown of the invoice by team.",
        "What would annual prepay look like compared to what we pay now?",
    ),
    ("Pricing", "negative"): (
        "Frankly the renewal quote is a lot higher than we budgeted.",
        "We're being asked to cut software spend by {pct} percent, and this is on the list.",
        "It's hard to justify the price when only a handful of people use it.",
        "The price increase caught us off guard, that's a real problem for us.",
        "Our CFO thinks we're overpaying for what the {team} team actually uses.",
    ),
    ("Onboarding", "positive"): (
        "Onboarding went really smoothly, the {team} team was up and running in {weeks} weeks.",
        "Adoption has been great, we're at about {pct} percent weekly active now.",
        "We rolled it out to another {n} people last month and nobody needed training.",
        "Your onboarding specialist was fantastic, the {team} folks loved the sessions.",
        "New hires pick it up on day one, which is a big win for us.",
    ),
    ("Onboarding", "neutral"): (
        "We're still working through the setup for the {team} team.",
        "About half of the team has logged in so far.",
        "We need a refresher session for new hires in {team}.",
        "Can we get a training session scheduled for next {month}?",
    ),
    ("Onboarding", "negative"): (
        "Adoption has stalled, most of the {team} team stopped logging in.",
        "Honestly the rollout has been painful and people went back to spreadsheets.",
        "We never really finished onboarding after our admin left.",
        "Only a few people use it, the rest of the {team} team ignores it.",
    ),
    ("Integrations", "positive"): (
        "The {integration} integration has been rock solid since we turned it on.",
        "Syncing with {integration} saved us a ton of copy-pasting.",
        "Hooking it up to {integration} took an afternoon, which was a nice surprise.",
        "Our data team loves how clean the {integration} sync is.",
    ),
    ("Integrations", "neutral"): (
        "We're planning to connect {integration} next quarter.",
        "What fields does the {integration} sync support?",
        "Our IT team needs the {integration} setup docs.",
        "Is there a way to limit which objects the {integration} sync pulls?",
    ),
    ("Integrations", "negative"): (
        "The {integration} sync keeps breaking and our data is out of date.",
        "We've lost trust in the numbers since the {integration} integration started failing.",
        "Every week someone has to manually fix the {integration} sync, it's frustrating.",
        "The {integration} connector has been down more than it's been up this quarter.",
    ),
    ("Reporting", "positive"): (
        "The {team} team lives in the reports now, they check them every morning.",
        "Our board deck is built straight from your reporting, it's a huge win.",
        "We finally have one source of truth for {team} numbers.",
        "The scheduled reports cut our month-end prep by {pct} percent.",
    ),
    ("Reporting", "neutral"): (
        "We mostly use the standard reports right now.",
        "Is there a way to export reports to {integration}?",
        "We'd like to review which reports the {team} team actually uses.",
        "Can reports be scheduled per region?",
    ),
    ("Reporting", "negative"): (
        "The reports are too slow, people gave up waiting for them.",
        "Leadership doesn't trust the {team} numbers coming out of the reports.",
        "We still build the board deck by hand because the reporting doesn't do what we need.",
        "The totals in the {team} report were wrong again last month, which was embarrassing.",
    ),
    ("Renewal", "positive"): (
        "Renewing is an easy decision for us this year.",
        "We'd like to talk about a multi-year renewal, honestly.",
        "Leadership sees this as a core tool, so the renewal is not a question.",
        "We're planning to expand when we renew, probably {n} more seats.",
    ),
    ("Renewal", "neutral"): (
        "The renewal will go through the usual procurement process.",
        "Can you send the renewal paperwork to our procurement team?",
        "We'll need the renewal quote by {month}.",
        "Who on your side handles the renewal paperwork?",
    ),
    ("Renewal", "negative"): (
        "I'll be honest, the renewal is not a given this year.",
        "We need to see real improvement before we can commit to renewing.",
        "Leadership is questioning whether we need this at all.",
        "The renewal is going to be a tough conversation internally.",
    ),
    ("Support", "positive"): (
        "Support has been super responsive, tickets get answered within the hour.",
        "Your team fixed the {feature} issue really quickly, thank you.",
        "We barely need support anymore, things just work.",
        "The support engineer who helped with {feature} was excellent.",
    ),
    ("Support", "neutral"): (
        "We opened a couple of tickets about {feature} last week.",
        "Who's the best contact for support escalations?",
        "The ticket about {feature} is still open, any update?",
        "Can we get a summary of our open tickets?",
    ),
    ("Support", "negative"): (
        "We've had tickets open for weeks about {feature} with no resolution.",
        "The outage last month really hurt us with the {team} team.",
        "Every time we escalate we get a different answer, it's really frustrating.",
        "Support keeps closing our {feature} tickets without fixing anything.",
    ),
    ("Roadmap", "positive"): (
        "The roadmap lines up really well with where we're heading.",
        "We're excited about the {feature} improvements you mentioned.",
        "If the new {feature} capabilities land in {quarter}, that's perfect timing for us.",
        "The last release was great, the {team} team noticed right away.",
    ),
    ("Roadmap", "neutral"): (
        "When is the {feature} update expected?",
        "We'd like to see the roadmap for {quarter}.",
        "Is better {feature} support on the roadmap at all?",
        "Can we join the beta for the new {feature} work?",
    ),
    ("Roadmap", "negative"): (
        "We were promised {feature} improvements two quarters ago and nothing shipped.",
        "The roadmap keeps slipping, it's hard to plan around it.",
        "We're disappointed that {feature} keeps getting pushed.",
        "Honestly we've stopped waiting for the {feature} features you promised.",
    ),
    ("Competition", "positive"): (
        "We looked at {competitor} last year and it wasn't close.",
        "Other vendors keep calling, but we're not interested in switching.",
        "Compared to {competitor}, your {feature} is miles ahead.",
    ),
    ("Competition", "neutral"): (
        "We get pitched by {competitor} every few months.",
        "Our parent company uses {competitor}, so the question comes up.",
        "Procurement asks us to benchmark vendors every year.",
    ),
    ("Competition", "negative"): (
        "We've started evaluating {competitor}, they came in quite a bit cheaper.",
        "{competitor} showed us a demo last week and the team liked it.",
        "Our CFO asked us to get a quote from {competitor} before renewing.",
        "A few people on the {team} team are already trialing {competitor}.",
    ),
}
CANCELLATION_LINES = (
    "We're seriously considering not renewing.",
    "I have to tell you we're planning to cancel at the end of the term.",
    "We've decided to move the {team} team off the platform.",
    "Unless something changes, we'll be switching to {competitor}.",
    "Please send over what we need to do to cancel.",
    "We won't be renewing in the current form, budget is going to {competitor}.",
)
_REP: dict[tuple[str, str], tuple[str, ...]] = {
    ("Pricing", "normal"): ("Happy to walk through the pricing options for the {plan} tier.",
                            "Let me put together a quote for the additional {n} seats.",
                            "We can look at annual prepay if that helps finance."),
    ("Pricing", "recovery"): ("I hear you on budget, let me see what flexibility we have.",
                              "Let's find a package that matches how the team actually uses it.",
                              "I can take a right-sizing proposal to our deal desk this week."),
    ("Onboarding", "normal"): ("Let's look at adoption by team and see where we can help.",
                               "We can run another enablement session for the {team} team.",
                               "I'll share the onboarding checklist for new hires."),
    ("Onboarding", "recovery"): ("Let's set up a re-onboarding plan for the {team} team.",
                                 "I can get a specialist assigned to help restart the rollout.",
                                 "What would it take to get people back in the product?"),
    ("Integrations", "normal"): ("Our solutions engineer can help configure the {integration} sync.",
                                 "I'll send over the {integration} field mapping guide.",
                                 "The {integration} connector got faster in the last release."),
    ("Integrations", "recovery"): ("I'm escalating the {integration} sync failures to engineering today.",
                                   "We'll put an engineer on the {integration} issue until it's stable.",
                                   "Can we get a session with your admin to debug the sync?"),
    ("Reporting", "normal"): ("Let me show you the new report templates.",
                              "We can schedule the {team} report to go out every Monday.",
                              "Which reports matter most for your leadership team?"),
    ("Reporting", "recovery"): ("Let's review the report totals together and fix the definitions.",
                                "I'll have our analytics specialist rebuild the board report with you.",
                                "I'm sorry about the wrong numbers, let's find the root cause."),
    ("Renewal", "normal"): ("Your renewal is coming up, so I wanted to start the conversation early.",
                            "I'll send the renewal quote by the end of the week.",
                            "Are there any changes to the seat count for the renewal?"),
    ("Renewal", "recovery"): ("What would need to be true for the renewal to make sense?",
                              "I'd like to bring our VP in to discuss the renewal with you.",
                              "Let's put together a success plan before the renewal date."),
    ("Support", "normal"): ("I checked your open tickets before the call.",
                            "The {feature} fix is scheduled for the next release.",
                            "Let me know if support response times ever slip."),
    ("Support", "recovery"): ("I'm sorry about the {feature} issues, I've escalated them personally.",
                              "I'll set up a weekly check-in until the open tickets are resolved.",
                              "We've assigned a dedicated support engineer to your account."),
    ("Roadmap", "normal"): ("We're investing heavily in {feature} this year.",
                            "The {feature} update is planned for {quarter}.",
                            "I can get you into the beta for the new {feature} work."),
    ("Roadmap", "recovery"): ("I'll get our product manager on a call about {feature}.",
                              "I understand the frustration with the {feature} timeline.",
                              "Let me confirm the {feature} dates with product before promising anything."),
    ("Competition", "normal"): ("How do we compare with the other tools you've seen?",
                                "Happy to share how other customers moved off {competitor}.",
                                "What do you like about the alternatives out there?"),
    ("Competition", "recovery"): ("What is {competitor} offering that we're not?",
                                  "Before you decide, let us show you the {feature} work we have coming.",
                                  "Can we do a side-by-side with {competitor} on your use case?"),
}  # fmt: skip
REP_OPEN = ("Thanks everyone for joining today.", "Great to see you all, let's get started.",
            "Thanks for making the time, I know it's a busy week.",
            "Appreciate you jumping on, I have a short agenda.")  # fmt: skip
CUSTOMER_OPEN = (
    "Thanks for having us.",
    "Good to see you.",
    "Sure, happy to be here.",
    "Thanks, let's dive in.",
)
CUSTOMER_CLOSE = (
    "Sounds good, thanks.",
    "Thanks, talk soon.",
    "Great, appreciate it.",
    "Perfect, send it over.",
)
REP_CLOSE = ("I'll send a recap with next steps after the call.", "Let's schedule a follow-up in two weeks.",
             "I'll loop in our product team on the {feature} question.",
             "Next steps: I'll share the plan and we'll review it on our next call.")  # fmt: skip

# Substrings that mark a negative customer sentence (used by tests and quick sentiment features).
NEGATIVE_MARKERS = (
    "frustrat", "cancel", "not renewing", "not a given", "disappoint", "switching to", "evaluating",
    "higher than we budgeted", "stalled", "gave up", "no resolution", "lost trust", "slipping",
    "hard to justify", "overpaying", "painful", "tough conversation", "questioning", "off guard",
    "won't be renewing", "off the platform", "doesn't trust", "embarrassing", "ignores it", "broken",
    "keeps breaking", "without fixing", "hurt us", "stopped waiting", "down more than", "trialing",
)  # fmt: skip
POSITIVE_MARKERS = (
    "fair for the value", "pays for itself", "smoothly", "been great", "was great", "huge win", "loved", "rock solid",
    "excellent", "easy decision", "excited", "perfect timing", "miles ahead", "big win", "source of truth",
    "super responsive", "just work", "lines up really well", "core tool",
)  # fmt: skip

TRACKERS = (
    ("Competitors", COMPETITORS + ("other vendors", "alternatives", "benchmark vendors")),
    ("Pricing", ("price", "pricing", "budget", "quote", "discount", "spend", "overpaying", "prepay")),
    ("Churn Risk", ("cancel", "not renewing", "won't be renewing", "off the platform", "switching to",
                    "not a given", "questioning whether")),
    ("Positive Feedback", POSITIVE_MARKERS),
    ("Integrations", INTEGRATIONS + ("integration", "sync", "connector")),
    ("Next Steps", ("next steps", "follow-up", "recap", "i'll send", "i'll share")),
)  # fmt: skip
_TRACKER_CACHE: dict[str, tuple[int, ...]] = {}


def tracker_hits(sentence: str) -> tuple[int, ...]:
    """Which keyword trackers a sentence triggers (cached: pooled sentences repeat)."""
    hit = _TRACKER_CACHE.get(sentence)
    if hit is None:
        low = sentence.lower()
        hit = tuple(int(any(k.lower() in low for k in kws)) for _, kws in TRACKERS)
        _TRACKER_CACHE[sentence] = hit
    return hit


KEY_POINTS = {
    ("Pricing", "positive"): "Customer sees clear value relative to price.",
    ("Pricing", "negative"): "Customer pushed back on pricing and budget.",
    ("Onboarding", "positive"): "Adoption is growing across teams.",
    ("Onboarding", "negative"): "Adoption has stalled; re-onboarding discussed.",
    ("Integrations", "positive"): "Integrations are stable and valued.",
    ("Integrations", "negative"): "Recurring integration failures are eroding trust.",
    ("Reporting", "positive"): "Reporting is embedded in leadership workflows.",
    ("Reporting", "negative"): "Customer does not trust reporting output.",
    ("Renewal", "positive"): "Renewal expected; expansion possible.",
    ("Renewal", "negative"): "Renewal at risk; customer wants improvements first.",
    ("Support", "positive"): "Customer praised support responsiveness.",
    ("Support", "negative"): "Open support issues are a major frustration.",
    ("Roadmap", "positive"): "Roadmap aligns with customer priorities.",
    ("Roadmap", "negative"): "Customer frustrated by roadmap delays.",
    ("Competition", "positive"): "Customer not considering alternatives.",
    ("Competition", "negative"): "Customer is evaluating a competitor.",
}
KEY_POINT_NEUTRAL = "Customer asked follow-up questions about {topic}."
KEY_POINT_CANCEL = "Customer signalled intent to cancel or not renew."

BRIEF_TONE = {
    4: "The customer was enthusiastic and shared clear wins.",
    3: "The customer was positive overall.",
    2: "The conversation was constructive with a few open questions.",
    1: "The customer raised several concerns.",
    0: "The customer expressed serious dissatisfaction and renewal risk.",
}


def fill_slots(rng: np.random.Generator) -> dict[str, object]:
    return {
        "team": TEAMS[rng.integers(len(TEAMS))],
        "n": int(rng.choice([5, 10, 12, 15, 20, 25, 30, 40, 50])),
        "pct": int(rng.choice([10, 15, 20, 25, 30, 40, 60, 70, 80])),
        "hours": int(rng.choice([4, 6, 8, 10, 12, 20])),
        "weeks": int(rng.choice([2, 3, 4, 6])),
        "plan": PLANS[rng.integers(len(PLANS))],
        "integration": INTEGRATIONS[rng.integers(len(INTEGRATIONS))],
        "feature": FEATURE_PHRASE[FEATURES[rng.integers(len(FEATURES))]],
        "competitor": COMPETITORS[rng.integers(len(COMPETITORS))],
        "quarter": QUARTERS[rng.integers(len(QUARTERS))],
        "month": MONTHS[rng.integers(len(MONTHS))],
    }


def _render_pool(templates: tuple[str, ...], rng: np.random.Generator, per_template: int) -> tuple[str, ...]:
    out: list[str] = []
    seen: set[str] = set()
    for t in templates:
        k = per_template if "{" in t else 1
        for _ in range(k):
            s = t.format(**fill_slots(rng))
            if s not in seen:
                seen.add(s)
                out.append(s)
    return tuple(out)


class SentencePools:
    """Pre-rendered sentence pools keyed by (speaker, topic, tone). Built once per process."""

    def __init__(self, per_template: int = 12):
        rng = np.random.default_rng(20240101)
        self.customer = {k: _render_pool(v, rng, per_template) for k, v in _CUSTOMER.items()}
        self.cancel = _render_pool(CANCELLATION_LINES, rng, per_template)
        self.rep = {k: _render_pool(v, rng, per_template) for k, v in _REP.items()}
        self.rep_open = REP_OPEN
        self.customer_open = CUSTOMER_OPEN
        self.rep_close = _render_pool(REP_CLOSE, rng, per_template)
        self.customer_close = CUSTOMER_CLOSE


_POOLS: SentencePools | None = None


def pools() -> SentencePools:
    global _POOLS
    if _POOLS is None:
        _POOLS = SentencePools()
    return _POOLS


# ----------------------------------------------------------------------------------------------
# MEDDPICC notes
# ----------------------------------------------------------------------------------------------

MEDDPICC_FIELDS = (
    "MEDDPICC_Metrics__c",
    "MEDDPICC_Economic_Buyer__c",
    "MEDDPICC_Decision_Criteria__c",
    "MEDDPICC_Decision_Process__c",
    "MEDDPICC_Paper_Process__c",
    "MEDDPICC_Identify_Pain__c",
    "MEDDPICC_Champion__c",
    "MEDDPICC_Competition__c",
)
_METRICS = ("Cut weekly reporting prep from {a} to {b} hours", "Raise pipeline coverage to {x}x",
            "Reduce forecast variance to under {pct}%", "Save ${k}k/yr in analyst time",
            "Grow weekly active users to {pct}% of seats", "Shorten month-end close by {d} days")  # fmt: skip
_CRITERIA = ("SSO + SCIM, {integration} sync, dashboard performance", "Native {integration} integration; audit log",
             "Ease of use for the {team} team; total cost", "Security review (SOC 2), API access, {integration}",
             "Forecast accuracy, mobile access, price per seat")  # fmt: skip
_PROCESS = ("Champion evaluation -> security review -> {eb_title} sign-off",
            "Pilot with {team} team, then exec committee approval",
            "{eb_title} approves; IT security review in parallel",
            "Renewal review in {quarter} budget cycle, {eb_title} final say")  # fmt: skip
_PAPER = ("MSA on file; PO required; procurement ~{d} days", "Standard order form via DocuSign",
          "Legal redlines on DPA expected; PO needed", "Procurement portal submission; net 30 terms",
          "Order form + security addendum, signed by {eb_title}")  # fmt: skip
_PAIN = ("Manual spreadsheets for forecasting; no single source of truth", "{team} numbers disputed in every QBR",
         "Slow reporting delays board prep", "No visibility into {team} pipeline health",
         "Data scattered across {integration} and spreadsheets")  # fmt: skip
_CHAMPION_STRONG = ("{name} ({title}) - strong advocate, presents internally",
                    "{name} ({title}) - sponsors rollout, has budget influence")  # fmt: skip
_CHAMPION_WEAK = ("{name} ({title}) - supportive but limited influence", "{name} ({title}) - lukewarm, busy")
_EB = ("{name}, {title}", "{name}, {title} (met)", "{name}, {title} - engaged in QBR",
       "{name}, {title} - not yet engaged")  # fmt: skip
_COMP_THREAT = ("Evaluating {competitor} on price", "{competitor} pitched the {team} team",
                "{competitor} (incumbent at parent co.)", "CFO requested a {competitor} quote")  # fmt: skip
_COMP_NONE = ("None identified", "No active evaluation", "Status quo / spreadsheets")


def render_meddpicc(
    filled: list[bool],
    r: list[int],
    eb: tuple[str, str] | None,
    champion: tuple[str, str] | None,
    strong_champion: bool,
    threat: bool,
) -> dict[str, str | None]:
    """MEDDPICC text fields; ``filled`` (8 flags) says which are non-null; ``r`` >= 8 pre-drawn ints."""
    slots = {
        "a": 6 + r[0] % 12,
        "b": 1 + r[0] % 4,
        "x": 3 + r[1] % 3,
        "pct": 5 + 5 * (r[2] % 12),
        "k": 20 + 10 * (r[3] % 20),
        "d": 2 + r[4] % 10,
        "integration": _pick(INTEGRATIONS, r[5]),
        "team": _pick(TEAMS, r[6]),
        "quarter": _pick(QUARTERS, r[7]),
        "competitor": _pick(COMPETITORS, r[1] // 3),
        "eb_title": eb[1] if eb else "VP",
    }
    vals: list[str | None] = [
        _pick(_METRICS, r[0] // 5).format(**slots),
        _pick(_EB, r[1] // 7).format(name=eb[0], title=eb[1]) if eb else None,
        _pick(_CRITERIA, r[2] // 3).format(**slots),
        _pick(_PROCESS, r[3] // 3).format(**slots),
        _pick(_PAPER, r[4] // 3).format(**slots),
        _pick(_PAIN, r[5] // 3).format(**slots),
        (
            _pick(_CHAMPION_STRONG if strong_champion else _CHAMPION_WEAK, r[6] // 3).format(
                name=champion[0], title=champion[1]
            )
            if champion
            else None
        ),
        (_pick(_COMP_THREAT, r[7] // 3) if threat else _pick(_COMP_NONE, r[7] // 3)).format(**slots),
    ]
    return {f: (v if ok else None) for f, v, ok in zip(MEDDPICC_FIELDS, vals, filled, strict=True)}
