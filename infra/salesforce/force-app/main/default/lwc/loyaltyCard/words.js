// The card's words in the programme's languages (sv, nb, da, fi, en); English for any other.
const WORDS = {
    en: {
        title: 'Loyalty',
        notMember: 'Not a member of the loyalty programme.',
        tier: 'Tier',
        toNext: '{points} points to {tier}',
        topTier: 'Highest tier',
        available: 'Points',
        pending: 'Pending',
        expires: '{points} points expire on {date}',
        noExpiry: 'No points expiring',
        latest: 'Latest changes',
        noEntries: 'No changes yet.',
        kinds: {
            accrual: 'Order',
            bonus: 'Bonus',
            release: 'Released',
            reversal: 'Refund',
            redemption: 'Reward',
            expiry: 'Expired',
            adjustment: 'Adjustment',
            tier: 'Tier',
            tier_override: 'Tier set'
        },
        error: 'The loyalty card could not be loaded.'
    },
    sv: {
        title: 'Lojalitet',
        notMember: 'Inte medlem i lojalitetsprogrammet.',
        tier: 'Nivå',
        toNext: '{points} poäng till {tier}',
        topTier: 'Högsta nivån',
        available: 'Poäng',
        pending: 'Väntande',
        expires: '{points} poäng går ut {date}',
        noExpiry: 'Inga poäng går ut',
        latest: 'Senaste ändringar',
        noEntries: 'Inga ändringar än.',
        kinds: {
            accrual: 'Köp',
            bonus: 'Bonus',
            release: 'Frisläppt',
            reversal: 'Retur',
            redemption: 'Belöning',
            expiry: 'Utgånget',
            adjustment: 'Justering',
            tier: 'Nivå',
            tier_override: 'Nivå satt'
        },
        error: 'Lojalitetskortet kunde inte laddas.'
    },
    nb: {
        title: 'Lojalitet',
        notMember: 'Ikke medlem av lojalitetsprogrammet.',
        tier: 'Nivå',
        toNext: '{points} poeng til {tier}',
        topTier: 'Høyeste nivå',
        available: 'Poeng',
        pending: 'Ventende',
        expires: '{points} poeng utløper {date}',
        noExpiry: 'Ingen poeng utløper',
        latest: 'Siste endringer',
        noEntries: 'Ingen endringer ennå.',
        kinds: {
            accrual: 'Kjøp',
            bonus: 'Bonus',
            release: 'Frigitt',
            reversal: 'Retur',
            redemption: 'Belønning',
            expiry: 'Utløpt',
            adjustment: 'Justering',
            tier: 'Nivå',
            tier_override: 'Nivå satt'
        },
        error: 'Lojalitetskortet kunne ikke lastes.'
    },
    da: {
        title: 'Loyalitet',
        notMember: 'Ikke medlem af loyalitetsprogrammet.',
        tier: 'Niveau',
        toNext: '{points} point til {tier}',
        topTier: 'Højeste niveau',
        available: 'Point',
        pending: 'Afventende',
        expires: '{points} point udløber {date}',
        noExpiry: 'Ingen point udløber',
        latest: 'Seneste ændringer',
        noEntries: 'Ingen ændringer endnu.',
        kinds: {
            accrual: 'Køb',
            bonus: 'Bonus',
            release: 'Frigivet',
            reversal: 'Retur',
            redemption: 'Belønning',
            expiry: 'Udløbet',
            adjustment: 'Justering',
            tier: 'Niveau',
            tier_override: 'Niveau sat'
        },
        error: 'Loyalitetskortet kunne ikke indlæses.'
    },
    fi: {
        title: 'Kanta-asiakkuus',
        notMember: 'Ei kanta-asiakasohjelman jäsen.',
        tier: 'Taso',
        toNext: '{points} pistettä tasoon {tier}',
        topTier: 'Ylin taso',
        available: 'Pisteet',
        pending: 'Odottavat',
        expires: '{points} pistettä vanhenee {date}',
        noExpiry: 'Ei vanhenevia pisteitä',
        latest: 'Viimeisimmät muutokset',
        noEntries: 'Ei muutoksia vielä.',
        kinds: {
            accrual: 'Osto',
            bonus: 'Bonus',
            release: 'Vapautettu',
            reversal: 'Palautus',
            redemption: 'Palkinto',
            expiry: 'Vanhentunut',
            adjustment: 'Korjaus',
            tier: 'Taso',
            tier_override: 'Taso asetettu'
        },
        error: 'Kanta-asiakaskorttia ei voitu ladata.'
    }
};
const ALIASES = { no: 'nb', nn: 'nb' };

/** The words for a Salesforce language (en_US, sv, no, fi...): its own, else English. */
export function wordsFor(language) {
    const base = String(language || 'en').toLowerCase().split(/[-_]/)[0];
    return WORDS[ALIASES[base] || base] || WORDS.en;
}

/** A phrase with its {name} slots filled. */
export function fill(phrase, values) {
    return phrase.replace(/\{(\w+)\}/g, (slot, name) => (name in values ? values[name] : slot));
}
