import { createElement } from 'lwc';
import { getRecord } from 'lightning/uiRecordApi';
import { getRelatedListRecords } from 'lightning/uiRelatedListApi';
import LoyaltyCard from 'c/loyaltyCard';
import { ENTRIES, contact, journal, settled } from './data';

// A Swedish user: the card speaks Swedish and writes numbers and dates as Sweden does
jest.mock('@salesforce/i18n/lang', () => ({ default: 'sv' }), { virtual: true });
jest.mock('@salesforce/i18n/locale', () => ({ default: 'sv-SE' }), { virtual: true });

const text = (element, selector) => element.shadowRoot.querySelector(selector)?.textContent.trim();

describe('c-loyalty-card in Swedish', () => {
    it("shows the card in the user's language", async () => {
        const element = createElement('c-loyalty-card', { is: LoyaltyCard });
        element.recordId = '0035g00000AbcDeAAJ';
        document.body.appendChild(element);
        getRecord.emit(contact({}));
        getRelatedListRecords.emit(journal(ENTRIES));
        await settled();
        const card = element.shadowRoot.querySelector('lightning-card');
        expect(card.title).toBe('Lojalitet');
        expect(text(element, '.to-next')).toBe('1\u00a0500 poäng till Gold');
        expect(text(element, '.available')).toBe('1\u00a0234');
        expect(text(element, '.expiry')).toBe('300 poäng går ut 31 jan. 2027');
        const kinds = [...element.shadowRoot.querySelectorAll('.entry .kind')].map((kind) => kind.textContent);
        expect(kinds.slice(0, 2)).toEqual(['Belöning', 'Köp']);
    });
});
