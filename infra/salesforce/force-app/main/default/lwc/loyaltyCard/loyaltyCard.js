import { LightningElement, api, wire } from 'lwc';
import { getRecord, getFieldValue } from 'lightning/uiRecordApi';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import LANG from '@salesforce/i18n/lang';
import LOCALE from '@salesforce/i18n/locale';
import MEMBER_ID from '@salesforce/schema/Contact.Loyalty_Member_Id__c';
import TIER from '@salesforce/schema/Contact.Loyalty_Tier__c';
import NEXT_TIER from '@salesforce/schema/Contact.Loyalty_Next_Tier__c';
import TO_NEXT from '@salesforce/schema/Contact.Loyalty_Points_To_Next_Tier__c';
import QUALIFYING from '@salesforce/schema/Contact.Loyalty_Qualifying_Points__c';
import POINTS from '@salesforce/schema/Contact.Loyalty_Points__c';
import PENDING from '@salesforce/schema/Contact.Loyalty_Pending_Points__c';
import EXPIRING from '@salesforce/schema/Contact.Loyalty_Expiring_Points__c';
import EXPIRE_ON from '@salesforce/schema/Contact.Loyalty_Points_Expire_On__c';
import { fill, wordsFor } from './words';

const FIELDS = [MEMBER_ID, TIER, NEXT_TIER, TO_NEXT, QUALIFYING, POINTS, PENDING, EXPIRING, EXPIRE_ON];
const JOURNAL = 'Loyalty_Transaction__c';
const LATEST = 5;

/**
 * The member's loyalty card on the Contact page, from the Contact's loyalty fields and the latest entries of its
 * transaction journal (Loyalty_Transaction__c): Salesforce data only, no callout.
 */
export default class LoyaltyCard extends LightningElement {
    @api recordId;
    contact;
    journal = [];
    failed = false;
    words = wordsFor(LANG);

    @wire(getRecord, { recordId: '$recordId', fields: FIELDS })
    wiredContact({ data, error }) {
        if (data) {
            this.contact = data;
            this.failed = false;
        } else if (error) {
            this.failed = true;
        }
    }

    @wire(getRelatedListRecords, {
        parentRecordId: '$recordId',
        relatedListId: 'Loyalty_Transactions__r',
        fields: [
            `${JOURNAL}.Id`,
            `${JOURNAL}.Kind__c`,
            `${JOURNAL}.Points__c`,
            `${JOURNAL}.Pending_Points__c`,
            `${JOURNAL}.Reason__c`,
            `${JOURNAL}.Entry_Date__c`
        ],
        sortBy: [`-${JOURNAL}.Entry_Date__c`],
        pageSize: LATEST
    })
    wiredJournal({ data, error }) {
        if (data) {
            this.journal = data.records;
        } else if (error) {
            this.journal = [];
        }
    }

    field(reference) {
        return this.contact ? getFieldValue(this.contact, reference) : null;
    }

    number(value) {
        return new Intl.NumberFormat(LOCALE).format(value || 0);
    }

    day(value) {
        const [year, month, date] = String(value).slice(0, 10).split('-').map(Number);
        const shown = new Date(Date.UTC(year, month - 1, date));
        return new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeZone: 'UTC' }).format(shown);
    }

    get loaded() {
        return Boolean(this.contact) && !this.failed;
    }

    get isMember() {
        return Boolean(this.field(MEMBER_ID));
    }

    get tier() {
        return this.field(TIER);
    }

    get nextTier() {
        return this.field(NEXT_TIER);
    }

    /** Qualifying points toward the next tier, out of what it needs (0 to 100); full at the highest tier. */
    get progress() {
        const toNext = this.field(TO_NEXT);
        if (!this.nextTier || toNext === null || toNext === undefined) {
            return 100;
        }
        const earned = this.field(QUALIFYING) || 0;
        const needed = earned + toNext;
        return needed > 0 ? Math.min(100, Math.round((100 * earned) / needed)) : 0;
    }

    get progressText() {
        if (!this.nextTier) {
            return this.words.topTier;
        }
        return fill(this.words.toNext, { points: this.number(this.field(TO_NEXT)), tier: this.nextTier });
    }

    get available() {
        return this.number(this.field(POINTS));
    }

    get pending() {
        return this.number(this.field(PENDING));
    }

    get expiry() {
        const points = this.field(EXPIRING);
        const on = this.field(EXPIRE_ON);
        if (!points || !on) {
            return this.words.noExpiry;
        }
        return fill(this.words.expires, { points: this.number(points), date: this.day(on) });
    }

    get entries() {
        return [...this.journal]
            .map((record) => {
                const value = (name) => record.fields[name] && record.fields[name].value;
                const points = (value('Points__c') || 0) + (value('Pending_Points__c') || 0);
                return {
                    id: record.id,
                    at: value('Entry_Date__c') || '',
                    date: value('Entry_Date__c') ? this.day(value('Entry_Date__c')) : '',
                    kind: this.words.kinds[value('Kind__c')] || value('Kind__c'),
                    points: (points > 0 ? '+' : '') + this.number(points),
                    pointsClass: points < 0 ? 'points slds-text-color_error' : 'points slds-text-color_success',
                    reason: value('Reason__c') || ''
                };
            })
            .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
            .slice(0, LATEST);
    }

    get hasEntries() {
        return this.entries.length > 0;
    }
}
