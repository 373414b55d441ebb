"""Shared test data and helpers: hand-written texts and the factories that make copies of them.

Every text here is hand-written for the tests (no corpus, no eval labels).
``STORIES`` holds seven short news stories about invented people and places;
story 6 reports the *same event* as story 0 (same people, places and figures)
in entirely different sentences.  From them:

* :func:`make_article` renders a story (headline line, then paragraphs of two
  sentences separated by blank lines);
* :func:`spin` replaces a share of the content words by synonyms, leaving
  names, numbers and stopwords alone, like an article spinner;
* :func:`truncate` keeps the first share of the words (line breaks kept);
* :func:`noisy_copy` changes only case (ALL CAPS), punctuation, quotes, dashes and spaces;
* :func:`punctuation_copy` changes punctuation, quotes and spaces but keeps case.

Helpers: :func:`build_views` (shingle views of texts), :func:`make_sets`
(``ShingleSets`` from hand-made integer sets), :func:`n_tokens`,
:func:`cluster_of`.  Tests import what they need from here (``from
tests.fixtures import ...``); ``conftest.py`` holds only pytest fixtures.
"""


from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np

STORIES: list[dict[str, object]] = [
    {  # 0: a bridge closure in Portvale
        "headline": "Portvale closes Halden Bridge after engineers find cracks",
        "sentences": [
            "Mayor Elena Marquez ordered the Halden Bridge in Portvale closed on Tuesday after inspectors found deep cracks in two of its steel supports.",
            "The bridge carries about 42,000 vehicles a day across the Serra River and links the northern suburbs with the busy harbour district.",
            "Chief engineer Tomas Brandt told reporters that the damage had spread quickly during the cold winter and could not be repaired while traffic kept running.",
            "Drivers were told to use the older Kellan Road crossing, which added nearly forty minutes to the morning commute for thousands of residents.",
            "The city council will hold an emergency meeting on Thursday to approve 18 million euros for temporary repairs and a full structural survey.",
            "Marquez said the decision was painful but necessary, adding that public safety had to come before convenience or the cost to local shops.",
            "Business owners in the harbour district warned that the closure could hurt sales just weeks before the summer tourist season begins.",
            "Brandt estimated that a temporary steel frame could reopen two lanes within six weeks if contractors are hired quickly.",
            "The Halden Bridge opened in 1968 and was last renovated in 2004, when workers replaced its concrete deck and lighting.",
            "Opposition councillor Ruth Okafor accused the administration of ignoring warnings from a 2019 inspection report that had flagged the rusting joints.",
            "The regional transport agency promised extra ferry services across the river and free parking at the new Serra Park station.",
            "Officials expect a final decision on whether to rebuild the bridge entirely by the end of September.",
        ],
    },
    {  # 1: quarterly results of a wind energy company
        "headline": "Northwind Energy profits jump as offshore farms come online",
        "sentences": [
            "Northwind Energy reported a quarterly profit of 312 million dollars on Wednesday, beating analyst forecasts thanks to three new offshore wind farms in the Baltic Sea.",
            "Chief executive Priya Raman said the company now produced enough electricity to power roughly 2.4 million homes across Denmark and Poland.",
            "Shares of the Copenhagen firm rose nearly nine percent in early trading, their biggest daily gain since the spring of 2021.",
            "Revenue climbed to 1.9 billion dollars, while operating costs fell as turbine prices eased after two difficult years for suppliers.",
            "Raman warned that higher interest rates could still delay the planned Gdansk Bay project, which needs about 4 billion dollars of fresh financing.",
            "Analyst Marcus Lindqvist of Nordhavn Securities described the results as remarkably strong and raised his price target for the stock.",
            "The company also signed a long supply contract with the steel maker Hollis Works to secure foundations for its next generation of turbines.",
            "Environmental groups welcomed the expansion but urged Northwind to protect seabird colonies near the island of Bornholm.",
            "Northwind plans to hire 1,200 engineers and technicians over the next three years, mostly at its service ports in Esbjerg and Szczecin.",
            "The board proposed a dividend of 1.50 dollars per share, up from 1.10 dollars a year earlier.",
            "Raman said the firm would publish a detailed climate plan in November, including targets for recycling old turbine blades.",
            "Investors will look for updates on the Gdansk Bay financing when Northwind holds its capital markets day in London next month.",
        ],
    },
    {  # 2: floods in the Tarrow valley
        "headline": "Floods force thousands from homes in the Tarrow valley",
        "sentences": [
            "Heavy rain caused the Tarrow River to burst its banks on Sunday night, forcing more than 6,500 people to leave their homes in the towns of Millbrook and Eastwick.",
            "Emergency crews used boats to rescue families trapped on rooftops, and a helicopter lifted eleven patients from the flooded Saint Anne hospital.",
            "Governor Daniel Whitcombe declared a state of emergency across Tarrow County and asked the national guard to help with the evacuation.",
            "Forecasters from the weather service said that 210 millimetres of rain had fallen in just two days, the highest total recorded since 1987.",
            "The main railway line between Millbrook and the city of Ardmore was suspended after water washed away part of the embankment.",
            "Volunteers filled sandbags outside the Eastwick library while farmers tried to move cattle to higher ground before the river rose again.",
            "Whitcombe promised that the state would cover the cost of temporary housing for every family that had lost its home.",
            "Local pastor Grace Adeyemi opened her church to more than 300 evacuees and appealed for blankets, food and clean drinking water.",
            "Engineers were watching the old Calder Dam closely, although officials insisted that the structure remained safe for now.",
            "Insurance companies estimated early damage at about 75 million dollars, a figure that is expected to rise once the water recedes.",
            "Schools in both towns will stay closed until at least Friday, and residents have been told to boil tap water before drinking it.",
            "Scientists at Ardmore University said warmer air was making such extreme storms more frequent in the region.",
        ],
    },
    {  # 3: a football transfer
        "headline": "Ashford United sign striker Leon Varga in record deal",
        "sentences": [
            "Ashford United completed the signing of Hungarian striker Leon Varga on Friday for a club record fee of 48 million pounds.",
            "The 23-year-old scored 27 goals last season for Dinamo Szeged and was also chased by clubs in Madrid and Milan.",
            "Manager Colin Hartley said Varga brought pace, strength and a hunger to win that the squad had badly missed during the last campaign.",
            "Varga signed a five-year contract and will wear the number nine shirt once worn by club legend Frank Delaney.",
            "Supporters gathered outside the Riverside Stadium to greet the forward, who waved from a balcony while holding a blue and white scarf.",
            "Ashford finished seventh in the league last year and missed out on European football by only two points.",
            "Chairman Hugh Pemberton said the deal showed that the owners were serious about returning the club to the top four.",
            "Varga is expected to make his debut against Castleton Rovers in a friendly match on the 14th of July.",
            "The transfer takes Ashford's summer spending to more than 90 million pounds after earlier moves for two young defenders.",
            "Hartley added that the club still hoped to sign a goalkeeper before the transfer window closes at the end of August.",
            "Dinamo Szeged will use part of the fee to rebuild their youth academy, according to their sporting director Attila Kovacs.",
            "Season tickets at the Riverside Stadium sold out within hours of the announcement, the club said.",
        ],
    },
    {  # 4: an astronomy discovery
        "headline": "Kestrel Observatory spots bright new comet",
        "sentences": [
            "Astronomers at the Kestrel Observatory in Chile have discovered a new comet that could become visible to the naked eye early next year.",
            "The object, named C/2031 Ferreira after the researcher who first noticed it, is currently about 640 million kilometres from the Sun.",
            "Doctor Lucia Ferreira spotted the faint smudge of light while checking routine images from the telescope on the night of 3 March.",
            "Calculations suggest the comet will pass closest to the Sun in February and may grow a tail millions of kilometres long.",
            "Professor Henrik Aalto of the University of Turku cautioned that comets are notoriously unpredictable and sometimes break apart.",
            "The Kestrel team has asked observers around the world to track the comet so that its orbit can be measured more precisely.",
            "Early measurements indicate the comet is travelling on a long orbit that last brought it near the inner planets about 11,000 years ago.",
            "Amateur astronomers in Australia and South Africa have already confirmed the discovery with small backyard telescopes.",
            "Ferreira said she had checked the images three times before she dared to send a report to the International Astronomical Union.",
            "The observatory, which sits at an altitude of 2,400 metres in the Atacama desert, opened only four years ago.",
            "Funding for its survey programme comes mainly from the European Southern Observatory and the government of Chile.",
            "Aalto said the discovery showed how automated surveys were changing the search for small bodies in the solar system.",
        ],
    },
    {  # 5: a provincial election
        "headline": "Valmora votes in tight race for provincial governor",
        "sentences": [
            "Voters in the province of Valmora went to the polls on Sunday in a tight race between incumbent governor Sofia Lenhart and challenger Viktor Dragan.",
            "Turnout reached 61 percent by late afternoon, according to the provincial election commission in the capital Castelmar.",
            "Lenhart, who has led the province since 2022, campaigned on new hospitals and lower ferry fares for the coastal islands.",
            "Dragan, a former mayor of Castelmar, promised to cut local taxes and to investigate contracts awarded during the pandemic.",
            "Opinion polls published last week showed the two candidates separated by fewer than three points.",
            "Observers from the Civic Watch group reported long queues in several rural districts but no serious irregularities.",
            "A third candidate, the environmental activist Noor Haddad, was polling at about 9 percent and could decide the outcome.",
            "Preliminary results are expected shortly after midnight, with a final count due on Tuesday.",
            "Lenhart voted early in her home town of Brisca and told supporters that she was confident of a second term.",
            "Dragan spent the day visiting polling stations in the industrial suburbs of Castelmar, where unemployment remains above 12 percent.",
            "The winner will take office on 1 June and must present a budget to the provincial assembly within sixty days.",
            "Analysts said a narrow result could trigger legal challenges that might delay the handover for several weeks.",
        ],
    },
    {  # 6: the SAME event as story 0, told in different sentences (shares names)
        "headline": "Halden Bridge shut as Marquez cites safety fears in Portvale",
        "sentences": [
            "Commuters in Portvale faced long delays on Wednesday, a day after Mayor Elena Marquez shut the Halden Bridge over the Serra River.",
            "Traffic backed up for kilometres along Kellan Road as motorists searched for another way into the harbour district.",
            "Tomas Brandt, who leads the engineering team, said his inspectors had seen nothing like the fractures in decades of work.",
            "Councillor Ruth Okafor demanded to know why a warning issued in 2019 had not led to urgent action by the city.",
            "Local bakers and cafe owners near the bridge said customers had vanished almost overnight.",
            "Marquez defended her record and said the 18 million euros requested from the council would be spent carefully.",
            "Some residents welcomed the extra ferries, although many complained that the boats were crowded and late.",
            "A spokesperson for the regional transport agency said more buses would be added from Serra Park by Monday.",
            "Brandt refused to say whether the 1968 structure would ever carry heavy lorries again.",
            "Several experts questioned whether a temporary frame could really be installed in only six weeks.",
            "The mayor is expected to face tough questions at Thursday's council session.",
            "For now, Portvale residents are planning their days around the missing crossing.",
        ],
    },
]

#: Index of the story that reports the same event as story 0.
SAME_EVENT_AS_0 = 6

#: A spinner's thesaurus: lower-case content words only (names and numbers are never replaced).
SYNONYMS: dict[str, str] = {
    "ordered": "commanded", "closed": "shut", "inspectors": "examiners", "found": "discovered",
    "deep": "profound", "cracks": "fissures", "steel": "metal", "supports": "pillars", "carries": "transports",
    "vehicles": "cars", "day": "daily", "links": "connects", "northern": "northerly", "suburbs": "outskirts",
    "busy": "bustling", "harbour": "port", "district": "quarter", "chief": "head", "engineer": "technician",
    "told": "informed", "reporters": "journalists", "damage": "harm", "spread": "expanded", "quickly": "rapidly",
    "cold": "chilly", "winter": "wintertime", "repaired": "fixed", "traffic": "congestion", "running": "flowing",
    "drivers": "motorists", "use": "utilise", "older": "elder", "crossing": "passage", "added": "included",
    "nearly": "almost", "minutes": "mins", "morning": "dawn", "commute": "journey", "thousands": "multitudes",
    "residents": "inhabitants", "city": "town", "council": "assembly", "hold": "convene", "emergency": "urgent",
    "meeting": "session", "approve": "sanction", "temporary": "provisional", "repairs": "fixes", "full": "complete",
    "structural": "architectural", "survey": "assessment", "decision": "verdict", "painful": "agonising",
    "necessary": "essential", "adding": "noting", "public": "communal", "safety": "security", "come": "arrive",
    "convenience": "comfort", "cost": "expense", "local": "nearby", "shops": "stores", "business": "commercial",
    "owners": "proprietors", "warned": "cautioned", "closure": "shutdown", "hurt": "harm", "sales": "revenues",
    "weeks": "wks", "summer": "summertime", "tourist": "visitor", "begins": "starts",
    "estimated": "reckoned", "frame": "framework", "reopen": "restore", "lanes": "carriageways",
    "contractors": "builders", "hired": "employed", "opened": "launched", "renovated": "refurbished",
    "workers": "labourers", "replaced": "substituted", "concrete": "cement", "deck": "platform",
    "lighting": "lamps", "opposition": "rival", "accused": "charged", "administration": "government",
    "ignoring": "neglecting", "warnings": "alerts", "inspection": "examination", "report": "account",
    "flagged": "highlighted", "rusting": "corroding", "joints": "junctions", "regional": "local",
    "transport": "transit", "agency": "authority", "promised": "pledged", "extra": "additional",
    "ferry": "boat", "services": "operations", "free": "complimentary", "parking": "garaging", "new": "fresh",
    "station": "terminal", "officials": "authorities", "expect": "anticipate", "final": "definitive",
    "rebuild": "reconstruct", "entirely": "completely", "end": "close",
    "reported": "announced", "quarterly": "three-monthly", "profit": "earnings", "beating": "exceeding",
    "analyst": "expert", "forecasts": "predictions", "thanks": "owing", "offshore": "marine",
    "wind": "breeze", "farms": "parks", "executive": "officer", "company": "firm", "produced": "generated",
    "enough": "sufficient", "electricity": "power", "roughly": "approximately", "homes": "households",
    "shares": "stocks", "rose": "climbed", "early": "initial", "trading": "dealing", "biggest": "largest",
    "daily": "everyday", "gain": "rise", "spring": "springtime", "revenue": "turnover", "climbed": "increased",
    "operating": "running", "costs": "expenses", "fell": "dropped", "turbine": "rotor", "prices": "costs",
    "eased": "softened", "difficult": "hard", "years": "yrs", "suppliers": "vendors", "higher": "greater",
    "interest": "lending", "rates": "levels", "delay": "postpone", "planned": "intended", "project": "scheme",
    "needs": "requires", "fresh": "new", "financing": "funding", "described": "characterised",
    "results": "figures", "remarkably": "unusually", "strong": "robust", "raised": "lifted", "price": "value",
    "target": "goal", "stock": "share", "signed": "inked", "long": "lengthy", "supply": "provision",
    "contract": "agreement", "maker": "manufacturer", "secure": "obtain", "foundations": "bases",
    "generation": "wave", "turbines": "rotors", "environmental": "ecological", "groups": "organisations",
    "welcomed": "praised", "expansion": "growth", "urged": "pressed", "protect": "shield",
    "seabird": "marine-bird", "colonies": "colony", "island": "isle", "plans": "intends", "hire": "recruit",
    "engineers": "technicians", "technicians": "specialists", "mostly": "chiefly", "service": "maintenance",
    "ports": "harbours", "board": "directors", "proposed": "suggested", "dividend": "payout",
    "earlier": "before", "firm": "company", "publish": "release", "detailed": "thorough",
    "climate": "environmental", "including": "incorporating", "targets": "goals", "recycling": "reusing",
    "blades": "vanes", "investors": "shareholders", "look": "watch", "updates": "news", "holds": "hosts",
    "capital": "funding", "markets": "trading", "month": "mth",
    "heavy": "intense", "rain": "rainfall", "caused": "led", "burst": "overflow", "banks": "shores",
    "night": "evening", "forcing": "compelling", "people": "persons", "leave": "abandon", "towns": "municipalities",
    "crews": "teams", "boats": "vessels", "rescue": "save", "families": "households", "trapped": "stranded",
    "rooftops": "roofs", "lifted": "airlifted", "patients": "sufferers", "flooded": "inundated",
    "hospital": "clinic", "declared": "proclaimed", "state": "condition", "asked": "requested",
    "national": "federal", "guard": "militia", "help": "assist", "evacuation": "exodus",
    "forecasters": "meteorologists", "weather": "meteorological", "fallen": "dropped", "highest": "greatest",
    "total": "sum", "recorded": "logged", "main": "principal", "railway": "rail", "line": "route",
    "suspended": "halted", "water": "floodwater", "washed": "swept", "part": "section",
    "embankment": "bank", "volunteers": "helpers", "filled": "packed", "sandbags": "sacks",
    "library": "reading-room", "farmers": "growers", "tried": "attempted", "move": "shift", "cattle": "livestock",
    "ground": "land", "river": "stream", "cover": "pay", "housing": "accommodation", "lost": "forfeited",
    "pastor": "minister", "church": "chapel", "evacuees": "displaced", "appealed": "pleaded",
    "blankets": "covers", "food": "provisions", "clean": "pure", "drinking": "potable", "watching": "monitoring",
    "closely": "carefully", "although": "though", "insisted": "maintained", "structure": "construction",
    "remained": "stayed", "safe": "secure", "insurance": "insurer", "companies": "firms",
    "figure": "number", "expected": "anticipated", "rise": "increase", "recedes": "retreats",
    "schools": "academies", "stay": "remain", "least": "minimum", "boil": "heat", "tap": "faucet",
    "scientists": "researchers", "warmer": "hotter", "air": "atmosphere", "making": "rendering",
    "extreme": "severe", "storms": "tempests", "frequent": "common", "region": "area",
    "completed": "finalised", "signing": "acquisition", "striker": "forward", "club": "team",
    "record": "landmark", "fee": "sum", "scored": "netted", "goals": "strikes", "season": "campaign",
    "chased": "pursued", "clubs": "teams", "manager": "coach", "brought": "delivered", "pace": "speed",
    "strength": "power", "hunger": "appetite", "win": "triumph", "squad": "team", "badly": "sorely",
    "missed": "lacked", "campaign": "season", "wear": "don", "shirt": "jersey", "worn": "donned",
    "legend": "icon", "supporters": "fans", "gathered": "assembled", "greet": "welcome",
    "forward": "attacker", "waved": "gestured", "balcony": "terrace", "holding": "clutching",
    "scarf": "muffler", "finished": "ended", "league": "division", "football": "soccer", "points": "pts",
    "chairman": "president", "deal": "transaction", "showed": "demonstrated", "serious": "earnest",
    "returning": "restoring", "top": "leading", "debut": "first-appearance", "friendly": "exhibition",
    "match": "game", "transfer": "move", "takes": "brings", "spending": "outlay", "moves": "deals",
    "young": "youthful", "defenders": "defensemen", "hoped": "wished", "goalkeeper": "keeper",
    "window": "period", "closes": "shuts", "youth": "junior", "academy": "school", "according": "per",
    "sporting": "sports", "director": "chief", "tickets": "passes", "sold": "vended", "hours": "hrs",
    "announcement": "statement", "astronomers": "stargazers", "discovered": "found", "visible": "observable", "naked": "unaided", "eye": "vision", "object": "body", "named": "called",
    "researcher": "scientist", "noticed": "spotted", "currently": "presently", "kilometres": "km",
    "spotted": "noticed", "faint": "dim", "smudge": "blur", "light": "glow", "checking": "examining",
    "routine": "regular", "images": "pictures", "telescope": "scope", "calculations": "computations",
    "suggest": "indicate", "pass": "travel", "closest": "nearest", "grow": "develop", "tail": "trail",
    "cautioned": "warned", "notoriously": "famously", "unpredictable": "erratic", "break": "split",
    "team": "group", "observers": "watchers", "world": "globe", "track": "follow", "orbit": "path",
    "measured": "gauged", "precisely": "accurately", "measurements": "readings", "indicate": "suggest",
    "travelling": "moving", "inner": "interior", "planets": "worlds", "amateur": "hobbyist",
    "confirmed": "verified", "discovery": "finding", "small": "little", "backyard": "garden",
    "telescopes": "scopes", "dared": "ventured", "send": "submit", "observatory": "station",
    "sits": "stands", "altitude": "elevation", "metres": "m", "desert": "wasteland", "funding": "money",
    "programme": "scheme", "mainly": "primarily", "government": "administration", "automated": "robotic",
    "surveys": "scans", "changing": "transforming", "search": "hunt", "bodies": "objects", "solar": "sun",
    "voters": "electors", "province": "region", "polls": "ballots", "tight": "close", "race": "contest",
    "incumbent": "sitting", "governor": "leader", "challenger": "contender", "turnout": "participation",
    "reached": "hit", "late": "later", "afternoon": "evening", "election": "electoral", "commission": "committee",
    "led": "governed", "campaigned": "canvassed", "hospitals": "clinics", "lower": "reduced",
    "fares": "tickets", "coastal": "seaside", "islands": "isles", "former": "previous", "mayor": "burgomaster",
    "cut": "reduce", "taxes": "levies", "investigate": "probe", "contracts": "deals", "awarded": "granted",
    "pandemic": "epidemic", "opinion": "view", "published": "released", "week": "wk", "candidates": "contenders",
    "separated": "divided", "fewer": "less", "queues": "lines", "several": "various", "rural": "country",
    "districts": "areas", "irregularities": "anomalies", "candidate": "contender", "activist": "campaigner", "polling": "scoring", "decide": "determine",
    "outcome": "result", "preliminary": "initial", "shortly": "soon", "count": "tally",
    "due": "expected", "voted": "cast", "home": "native", "town": "city", "confident": "certain",
    "term": "mandate", "spent": "passed", "visiting": "touring", "stations": "booths",
    "industrial": "manufacturing", "unemployment": "joblessness", "remains": "stays", "winner": "victor",
    "office": "post", "present": "submit", "budget": "spending-plan", "assembly": "parliament",
    "analysts": "experts", "narrow": "slim", "result": "outcome", "trigger": "spark", "legal": "court",
    "challenges": "disputes", "handover": "transition", "leader": "pioneer",
}

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_STOP = None  # filled lazily from provenance.normalize.STOPWORDS


def _stopwords() -> frozenset[str]:
    global _STOP
    if _STOP is None:
        from provenance.prepare.normalize import STOPWORDS

        _STOP = STOPWORDS
    return _STOP


def story_sentences(story: int) -> list[str]:
    return list(STORIES[story % len(STORIES)]["sentences"])  # type: ignore[arg-type]


def make_article(seed: int, n_sentences: int = 12, *, start: int = 0, headline: bool = True) -> str:
    """Story ``seed`` (mod the number of stories), sentences ``start .. start+n``.

    Rendered as a headline line and paragraphs of two sentences separated by
    blank lines; every paragraph is longer than the boilerplate line limit.
    """
    story = STORIES[seed % len(STORIES)]
    sentences = list(story["sentences"])[start : start + n_sentences]  # type: ignore[arg-type]
    paragraphs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences), 2)]
    head = [str(story["headline"])] if headline else []
    return "\n\n".join(head + paragraphs) + "\n"


def _is_content(word: str) -> bool:
    return word[0].islower() and word.lower() not in _stopwords()


def spin(text: str, rate: float = 0.3, seed: int = 0) -> str:
    """Replace about ``rate`` of the content words by a synonym.

    Content words are lower-case non-stopwords; capitalised words (names,
    places, sentence starts) and numbers are never touched.  Exactly
    ``round(rate * content words)`` words the thesaurus knows are replaced
    (fewer if it knows fewer), chosen at random by ``seed``.
    """
    rng = random.Random(seed)
    words = [m for m in _WORD.finditer(text) if _is_content(m.group())]
    known = [m for m in words if m.group() in SYNONYMS and SYNONYMS[m.group()] != m.group()]
    chosen = sorted(rng.sample(range(len(known)), min(len(known), round(rate * len(words)))))
    out, last = [], 0
    for i in chosen:
        m = known[i]
        out.append(text[last : m.start()])
        out.append(SYNONYMS[m.group()])
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def spun_share(original: str, spun: str) -> float:
    """Share of the original's content words replaced in ``spun`` (same word count)."""
    a = [w for w in _WORD.findall(original) if _is_content(w)]
    b = _WORD.findall(spun)
    ob = _WORD.findall(original)
    assert len(ob) == len(b)
    changed = sum(1 for x, y in zip(ob, b) if x != y)
    return changed / max(len(a), 1)


def truncate(text: str, share: float) -> str:
    """The first ``share`` of the words of ``text`` (white space and line breaks kept)."""
    parts = re.split(r"(\s+)", text.strip())
    n_words = sum(1 for p in parts if p and not p.isspace())
    keep = max(1, int(round(n_words * share)))
    out, seen = [], 0
    for p in parts:
        if p and not p.isspace():
            seen += 1
            if seen > keep:
                break
        out.append(p)
    return "".join(out).rstrip() + "\n"


def noisy_copy(text: str) -> str:
    """The same text in other case, quotes, dashes and spacing: an exact duplicate after normalisation."""
    out = text.upper().replace(",", " ,").replace(".", "!")
    out = out.replace("'", "\u2019").replace(" - ", " \u2014 ")
    return out.replace("  ", " \u00a0")


def build_views(texts: list[str], *, boilerplate_min_docs: int | None = None):
    """Shingle views of ``texts`` with the default config's n-grams and seed.

    Boilerplate lines are only removed when ``boilerplate_min_docs`` is given.
    """
    import polars as pl

    from provenance.config import Config
    from provenance.prepare.normalize import boilerplate_keys, boilerplate_tokens, tokenize
    from provenance.prepare.shingle import shingle_views

    config = Config().prepare
    tokens = tokenize(pl.Series(texts, dtype=pl.String), config.seed, max_key_tokens=config.boilerplate_max_tokens)
    flagged = None
    if boilerplate_min_docs is not None:
        keys = boilerplate_keys(tokens.line_doc, tokens.line_key, boilerplate_min_docs)
        flagged = boilerplate_tokens(tokens, keys)
    return shingle_views(
        tokens, len(texts), word_ngram=config.word_ngram, anchor_ngram=config.anchor_ngram, boilerplate=flagged
    )


def n_tokens(texts: list[str]) -> np.ndarray:
    """Token count of every text (as the pipeline counts them)."""
    return np.array([len(re.findall(r"\w+", t)) for t in texts], dtype=np.int64)


def punctuation_copy(text: str) -> str:
    """The same text with other punctuation, quotes and spacing but the same case: a faithful copy."""
    out = text.replace(",", " ,").replace(". ", "!  ").replace("'", "\u2019")
    return out.replace("\n\n", "\n\u00a0\n")


def cluster_of(result) -> dict[str, str]:
    """doc_id -> cluster_id of a pipeline result."""
    return dict(zip(result.documents["doc_id"].to_list(), result.documents["cluster_id"].to_list()))


def make_sets(parts):
    """``ShingleSets`` of hand-made integer sets (each made sorted and distinct)."""
    from provenance.prepare.shingle import ShingleSets

    parts = [np.unique(np.asarray(list(p), dtype=np.uint32)) for p in parts]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    return ShingleSets(np.concatenate(parts).astype(np.uint32) if parts else np.zeros(0, np.uint32), offsets)


def datasketch_signature(values, num_perm: int, seed: int) -> np.ndarray:
    """datasketch's own ``affine32`` MinHash of integer shingles (the reference signatures are checked against)."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, scheme="affine32", hashfunc=lambda v: int(v))
    m.update_batch(np.asarray(values).tolist())
    return m.hashvalues


# ---------------------------------------------------------------------------- hostile text (report tests)

#: HTML and script payloads a document's title, text or publisher may carry (the report must show them as text).
SCRIPT_PAYLOAD = '</script><script>document.title="pwned"</script>'
IMG_PAYLOAD = '"><img src=x onerror="document.title=\'pwned\'">'
COMMENT_PAYLOAD = "<!-- <script>"


def hostile_corpus(folder: Path) -> Path:
    """Two versions of one story whose title, text and publisher carry HTML and script payloads (``docs.jsonl``)."""
    import json

    sentences = [
        f"Sentence {i} says the harbour authority in Port Elric approved a new ferry schedule for the islands."
        for i in range(10)
    ]
    first = f"Ferry {SCRIPT_PAYLOAD} schedule {IMG_PAYLOAD}\n\n" + " ".join(sentences) + f" {COMMENT_PAYLOAD} end."
    second = first.replace("approved", "passed").replace("end.", "end. & more <b>bold</b> text")
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": "hostile-a", "text": first, "publisher": f"Daily {IMG_PAYLOAD}", "published_at": "2024-03-01T08:00:00"},
        {"id": "hostile-b", "text": second, "publisher": "</script>", "published_at": "2024-03-02T09:30:00"},
    ]
    (folder / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def words_of(*texts: str, max_tokens: int = 20_000):
    """:class:`provenance.prepare.words.Words` of each text (the Python-side tokeniser alignments read)."""
    import polars as pl

    from provenance.prepare.words import doc_words

    return doc_words(pl.Series(list(texts), dtype=pl.String), max_tokens)


def light_edits(story: int = 0) -> dict[str, str]:
    """A source (8 sentences of ``story``, no headline) and four light edits of it, one kind each.

    ``headline``: the story's headline pasted on top as a line of its own (no terminal mark:
    a fragment, not a sentence); ``dropped``: the 4th sentence left out; ``truncated``: the
    first 70% of the words; ``spun``: 30% of the content words swapped for a thesaurus
    synonym (seed 0: no run of more than two swapped words).
    """
    source = make_article(story, 8, headline=False)
    return {
        "source": source,
        "headline": f"{STORIES[story]['headline']}\n\n{source}",
        "dropped": source.replace(" " + story_sentences(story)[3], ""),
        "truncated": truncate(source, 0.7),
        "spun": spin(source, 0.3, seed=0),
    }


def near_copy(text: str, first: str = "Updated: see our live coverage", last: str = "Reporting by our staff.") -> str:
    """``text`` with its first and last line replaced (a near-exact copy a different site made)."""
    lines = [line for line in text.split("\n") if line.strip()]
    return "\n\n".join([first, *lines[1:-1], last])


def paste_lines(text: str, pasted: list[str]) -> str:
    """``text`` with the ``pasted`` lines (e.g. other stories' headlines) put after its 2nd, 4th, ... paragraphs."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    out: list[str] = []
    for i, p in enumerate(paragraphs):
        out.append(p)
        if i % 2 == 1 and pasted:
            out.append(pasted[(i // 2) % len(pasted)])
    return "\n\n".join(out)


#: A hand-written text that shares nothing with the stories.
UNRELATED = (
    "Orchard Lane allotments\n\n"
    "Gardeners on Orchard Lane harvested a record crop of pumpkins this autumn after volunteers rebuilt the old "
    "greenhouse with donated glass. The committee plans a seed swap in the village hall and a course on composting "
    "for beginners, with tea and cake served by the youth choir.\n"
)


def store_corpus() -> dict[str, str]:
    """A store's first corpus: two clusters with copies, two halves of one story (with a copy), a singleton, a tree of two."""
    return {
        "s0-origin": make_article(0),
        "s0-spun": spin(make_article(0), 0.3, seed=1),
        "s0-head": truncate(make_article(0), 0.6),
        "s1-first-half": make_article(1, 6),
        "s1-second-half": make_article(1, 6, start=6, headline=False),
        "s1-second-half-copy": noisy_copy(make_article(1, 6, start=6, headline=False)),
        "s2-alone": make_article(2),
        "s3-origin": make_article(3),
        "s3-changing": truncate(make_article(3), 0.7),
    }
