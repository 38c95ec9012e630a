//! Rules for destinations: their names and the free text of their
//! maintenance settings.

use super::Checker;

impl Checker<'_> {
    pub(super) fn destinations(&mut self) {
        for declared in self.config.destinations.values() {
            let file = declared.file;
            self.name(file, &declared.name, "destination");
            if let Some(maintenance) = &declared.spec.maintenance {
                for text in maintenance
                    .notice_de
                    .iter()
                    .chain(&maintenance.notice_en)
                    .chain(&maintenance.allowed_groups)
                {
                    self.plain_text(file, text);
                }
            }
        }
    }
}
