import { createElement } from 'lwc';
import { getRecord } from 'lightning/uiRecordApi';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import LoyaltyCard from 'c/loyaltyCard';
import { ENTRIES, contact, journal, settled } from './data';

function mount() {
    const element = createElement('c-loyalty-card', { is: LoyaltyCard });
    element.recordId = '0035g00000AbcDeAAJ';
    document.body.appendChild(element);
    return element;
}

const text = (element, selector) => element.shadowRoot.querySelector(selector)?.textContent.trim();

describe('c-loyalty-card', () => {
    afterEach(() => {
        while (document.body.firstChild) {
            document.body.removeChild(document.body.firstChild);
        }
        jest.clearAllMocks();
    });

    it('asks the Contact for its loyalty fields and the journal for its latest entries, newest first', async () => {
        mount();
        await settled();
        const asked = getRecord.getLastConfig();
        expect(asked.recordId).toBe('0035g00000AbcDeAAJ');
        const fields = asked.fields.map((field) => field.fieldApiName);
        expect(fields).toEqual(expect.arrayContaining(['Loyalty_Tier__c', 'Loyalty_Points__c', 'Loyalty_Qualifying_Points__c']));
        const related = getRelatedListRecords.getLastConfig();
        expect(related.relatedListId).toBe('Loyalty_Transactions__r');
        expect(related.sortBy).toEqual(['-Loyalty_Transaction__c.Entry_Date__c']);
        expect(related.pageSize).toBe(5);
    });

    it('shows the tier with its progress to the next, points available and pending and the next expiry', async () => {
        const element = mount();
        getRecord.emit(contact({}));
        await settled();
        expect(text(element, '.tier-name')).toBe('Silver');
        const bar = element.shadowRoot.querySelector('lightning-progress-bar');
        expect(bar.value).toBe(75); // 4,500 qualifying of the 6,000 Gold needs
        expect(text(element, '.to-next')).toBe('1,500 points to Gold');
        expect(text(element, '.available')).toBe('1,234');
        expect(text(element, '.pending')).toBe('250');
        expect(text(element, '.expiry')).toBe('300 points expire on Jan 31, 2027');
    });

    it('shows the latest five entries of the journal, newest first, with their points and reasons', async () => {
        const element = mount();
        getRecord.emit(contact({}));
        getRelatedListRecords.emit(journal(ENTRIES));
        await settled();
        const rows = [...element.shadowRoot.querySelectorAll('.entry')];
        expect(rows).toHaveLength(5);
        expect(rows.map((row) => row.querySelector('.kind').textContent)).toEqual([
            'Reward',
            'Order',
            'Expired',
            'Released',
            'Adjustment'
        ]);
        expect(rows[0].querySelector('.points').textContent).toBe('-500');
        expect(rows[0].querySelector('.points').className).toContain('error');
        expect(rows[1].querySelector('.points').textContent).toBe('+250');
        expect(rows[3].querySelector('.points').textContent).toBe('0'); // released: pending became available
        expect(rows[0].querySelector('.reason').textContent).toBe('Reward 50-off');
        expect(rows[0].querySelector('.date').textContent).toBe('Nov 25, 2026');
    });

    it('shows the highest tier as full, and no expiry when nothing expires', async () => {
        const element = mount();
        getRecord.emit(contact({ Loyalty_Tier__c: 'Platinum', Loyalty_Next_Tier__c: null, Loyalty_Points_To_Next_Tier__c: null, Loyalty_Expiring_Points__c: 0 }));
        getRelatedListRecords.emit(journal([]));
        await settled();
        expect(element.shadowRoot.querySelector('lightning-progress-bar').value).toBe(100);
        expect(text(element, '.to-next')).toBe('Highest tier');
        expect(text(element, '.expiry')).toBe('No points expiring');
        expect(text(element, '.no-entries')).toBe('No changes yet.');
    });

    it('says so for a Contact that is not a member', async () => {
        const element = mount();
        getRecord.emit(contact({ Loyalty_Member_Id__c: null }));
        await settled();
        expect(text(element, '.not-member')).toBe('Not a member of the loyalty programme.');
        expect(element.shadowRoot.querySelector('.tier')).toBeNull();
    });

    it('says the card could not be loaded when the Contact cannot be read', async () => {
        const element = mount();
        getRecord.error();
        await settled();
        expect(text(element, '.error')).toBe('The loyalty card could not be loaded.');
    });
});
