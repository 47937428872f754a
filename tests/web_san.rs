//! The web console over a real SAN: `dvsan demo`'s station and three real
//! units (in this process, on loopback, file-backed disks), the console's
//! router driven in-process. Every form that changes a unit goes to the
//! unit by SNMP SET and back through the inventory; refused input comes
//! back on its form with the values kept, and nothing is half made.

#[path = "../src/demo.rs"]
#[allow(dead_code)]
mod demo;
mod support {
    pub mod web;
}

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use dvsan_station::http::{AppState, router};
use dvsan_station::{Inventory, UnitState};
use support::web::{Answer, Session};

struct San {
    demo: demo::Demo,
    app: Router,
    admin: Session,
    _dir: tempfile::TempDir,
    db: String,
}

async fn san() -> San {
    san_admitting("auto").await
}

async fn san_admitting(admission: &str) -> San {
    let dir = tempfile::tempdir().unwrap();
    let args = demo::DemoArgs {
        dir: dir.path().join("demo"),
        web_listen: Some("127.0.0.1:0".parse().unwrap()),
        admission: admission.to_owned(),
    };
    let demo = demo::Demo::start(&args).await.unwrap();
    let state = if admission == "manual" {
        UnitState::Pending
    } else {
        UnitState::Online
    };
    assert_eq!(demo.wait_for_units(state, Duration::from_secs(30)).await, 3);
    let app = router(AppState {
        ops: demo.operations().clone(),
    });
    let admin = Session::login(&app, demo::ADMIN, &demo.password).await;
    San {
        db: format!("sqlite://{}", args.dir.join("station.db").display()),
        demo,
        app,
        admin,
        _dir: dir,
    }
}

impl San {
    async fn unit_uuid(&self, name: &str) -> String {
        self.demo
            .operations()
            .inventory()
            .units()
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
            .unwrap()
            .uuid
    }

    async fn get(&self, path: &str) -> Answer {
        self.admin.get(&self.app, path).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.admin.post(&self.app, path, fields).await
    }

    /// The page at `path` once it shows every one of `texts`: after a
    /// change the station polls the unit again, and under load the answer
    /// may come only with the next periodic poll.
    async fn settled(&self, path: &str, texts: &[&str]) -> Answer {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let page = self.get(path).await;
            if texts.iter().all(|t| page.body.contains(t)) || std::time::Instant::now() >= deadline
            {
                for t in texts {
                    page.has(t);
                }
                return page;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_are_listed_and_groups_and_partitions_are_made_and_unmade_from_their_page() {
    let san = san().await;
    san.get("/units")
        .await
        .expect(StatusCode::OK)
        .has("san1.demo.test")
        .has("san2.demo.test")
        .has("san3.demo.test")
        .has("<td>demo.test</td>")
        .has("<span class=\"badge online\">online</span>");
    let san1 = san.unit_uuid("san1.demo.test").await;
    san.get(&format!("/units/{san1}"))
        .await
        .expect(StatusCode::OK)
        .has("<td>data</td><td>raid5</td><td>64 KiB</td><td>1,2,3</td>")
        .has("No free disk on this unit.");
    let san3 = san.unit_uuid("san3.demo.test").await;
    let page = format!("/units/{san3}");
    san.get(&page)
        .await
        .expect(StatusCode::OK)
        .has("No RAID group yet.")
        .has("name=\"disks\" value=\"3\"");

    // Refused: no disk chosen; a name with a space (values kept).
    let groups = format!("{page}/groups");
    san.post(&groups, &[("name", "fresh"), ("level", "raid5")])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .has("Choose the free disks");
    san.post(
        &groups,
        &[
            ("name", "my group"),
            ("level", "raid1"),
            ("disks", "1"),
            ("disks", "2"),
        ],
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY)
    .has("may not contain")
    .has("value=\"my group\"")
    .has("name=\"disks\" value=\"1\" checked")
    .has("name=\"disks\" value=\"3\">")
    .has("<option value=\"raid1\" selected>");
    assert!(
        san.demo
            .operations()
            .inventory()
            .groups_of(&san3)
            .await
            .unwrap()
            .is_empty()
    );

    // Made: a RAID 5 group over the three free disks.
    let made = san
        .post(
            &groups,
            &[
                ("name", "fresh"),
                ("level", "raid5"),
                ("chunk_kib", "32"),
                ("disks", "1"),
                ("disks", "2"),
                ("disks", "3"),
            ],
        )
        .await;
    made.expect(StatusCode::SEE_OTHER);
    assert_eq!(made.location(), page);
    san.settled(
        &page,
        &[
            "<td>fresh</td><td>raid5</td><td>32 KiB</td><td>1,2,3</td>",
            "No free disk on this unit.",
        ],
    )
    .await;

    // Partitions: a bad size is refused with the values kept; then made,
    // grown and deleted.
    let partitions = format!("{page}/partitions");
    san.post(
        &partitions,
        &[("name", "scratch"), ("raid_group", "1"), ("size", "12Q")],
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY)
    .has("Size &#34;12Q&#34; is not a size")
    .has("value=\"scratch\"")
    .has("value=\"12Q\"");
    san.post(
        &partitions,
        &[("name", "scratch"), ("raid_group", "1"), ("size", "64G")],
    )
    .await
    .expect(StatusCode::CONFLICT);
    san.post(
        &partitions,
        &[("name", "scratch"), ("raid_group", "1"), ("size", "32M")],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    san.settled(&page, &["<td>scratch</td><td>fresh</td>", "32 MiB"])
        .await;
    let index = san.demo.operations().unit(&san3).await.unwrap().partitions[0].volume_index;
    san.post(
        &format!("{page}/partitions/{index}/grow"),
        &[("size", "48M")],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    san.settled(&page, &["48 MiB"]).await;
    // A group holding a partition is not deleted.
    let delete_group = format!("{page}/groups/1/delete");
    san.post(&delete_group, &[])
        .await
        .expect(StatusCode::CONFLICT);
    san.post(&format!("{page}/partitions/{index}/delete"), &[])
        .await
        .expect(StatusCode::SEE_OTHER);
    san.settled(&page, &["No partition yet."]).await;
    san.post(&delete_group, &[])
        .await
        .expect(StatusCode::SEE_OTHER);
    san.settled(&page, &["No RAID group yet.", "name=\"disks\" value=\"1\""])
        .await;
    san.demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_member_is_replaced_from_its_groups_row() {
    let san = san().await;
    let san3 = san.unit_uuid("san3.demo.test").await;
    let page = format!("/units/{san3}");
    san.post(
        &format!("{page}/groups"),
        &[
            ("name", "pair"),
            ("level", "raid1"),
            ("disks", "1"),
            ("disks", "2"),
        ],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    san.settled(&page, &["<td>pair</td><td>raid1</td>"])
        .await
        .lacks("Replace and rebuild");
    // Disk 1 dies; the next metadata write (a partition made) finds it
    // out, and the station learns it right after.
    let disk1 = san
        .demo
        .unit(2)
        .disks()
        .into_iter()
        .find(|d| d.superblock().index == 1)
        .unwrap();
    disk1.fail_for_test();
    san.post(
        &format!("{page}/partitions"),
        &[("name", "p"), ("raid_group", "1"), ("size", "8M")],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    san.settled(
        &page,
        &[
            "<span class=\"badge degraded\">degraded</span>",
            "<option value=\"1\">member 1 (disk #1, failed; its own disk back rebuilds 255 MiB)</option>",
            "<option value=\"3\">#3 256 MiB (ok)</option>",
            "Replace and rebuild",
        ],
    )
    .await;

    // Refused, on the group's row, with the choices kept.
    let replace = format!("{page}/groups/1/replace");
    san.post(&replace, &[("disk", "3")])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .has("Choose the lost member to replace.")
        .has("<option value=\"3\" selected>");
    san.post(&replace, &[("slot", "2"), ("disk", "3")])
        .await
        .expect(StatusCode::CONFLICT)
        .has("Member 2 of RAID group pair (disk 2) is in service");
    san.post(&replace, &[("slot", "1"), ("disk", "2")])
        .await
        .expect(StatusCode::CONFLICT)
        .has("Disk 2 is in RAID group 1");

    // Disk 3 takes member 1's place and is rebuilt.
    let done = san.post(&replace, &[("slot", "1"), ("disk", "3")]).await;
    done.expect(StatusCode::SEE_OTHER);
    assert_eq!(done.location(), page);
    san.settled(
        &page,
        &[
            "<td>pair</td><td>raid1</td><td>—</td><td>3,2</td>",
            "<span class=\"badge optimal\">optimal</span>",
        ],
    )
    .await
    .lacks("Replace and rebuild");
    san.get("/events")
        .await
        .has("member 1 of RAID group pair: disk 3 in place of disk 1; rebuilding");
    san.demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_allocated_granted_revoked_and_deleted_after_confirmation() {
    let san = san().await;
    let inventory = san.demo.operations().inventory().clone();
    // Refused: a size of 12Q, a name with spaces, more than there is.
    for (fields, status, message) in [
        (
            [("name", "vol1"), ("size", "12Q"), ("client", "127.0.0.1")],
            StatusCode::UNPROCESSABLE_ENTITY,
            "Size &#34;12Q&#34; is not a size",
        ),
        (
            [
                ("name", "my volume"),
                ("size", "64M"),
                ("client", "127.0.0.1"),
            ],
            StatusCode::UNPROCESSABLE_ENTITY,
            "may not contain",
        ),
        (
            [("name", "huge"), ("size", "100G"), ("client", "127.0.0.1")],
            StatusCode::CONFLICT,
            "",
        ),
    ] {
        let answer = san.post("/volumes", &fields).await;
        answer
            .expect(status)
            .has(message)
            .has(&format!("value=\"{}\"", fields[0].1))
            .has(&format!("value=\"{}\"", fields[1].1))
            .has("value=\"127.0.0.1\"")
            .has("class=\"error\"");
    }
    assert!(san.demo.operations().volumes().await.unwrap().is_empty());
    for unit in inventory.units().await.unwrap() {
        assert!(
            inventory.volumes_of(&unit.uuid).await.unwrap().is_empty(),
            "nothing half made on {}",
            unit.name
        );
    }

    // Allocated on a chosen unit, to one client.
    let san2 = san.unit_uuid("san2.demo.test").await;
    let made = san
        .post(
            "/volumes",
            &[
                ("name", "vol1"),
                ("size", "64M"),
                ("client", "127.0.0.1"),
                ("unit", &san2),
            ],
        )
        .await;
    made.expect(StatusCode::SEE_OTHER);
    assert_eq!(made.location(), "/volumes/vol1");
    let v = san.demo.operations().volume("vol1").await.unwrap();
    let uri = &v.extents[0].nbd_uri;
    assert!(uri.starts_with("nbd://127.0.0.1:"), "{uri}");
    san.get("/volumes/vol1")
        .await
        .expect(StatusCode::OK)
        .has(uri)
        .has("dvsan volume attach vol1 --station-url http://127.0.0.1:8080")
        .has("<code>127.0.0.1</code>")
        .has("san2.demo.test");
    san.get("/volumes")
        .await
        .has("<a href=\"/volumes/vol1\">vol1</a>")
        .has("64 MiB");
    san.get("/clients")
        .await
        .has("<code>127.0.0.1</code>")
        .has("<a href=\"/volumes/vol1\">vol1</a>");
    san.get("/")
        .await
        .has("<strong>3</strong> online")
        .has("Every RAID group is optimal.");

    // Grant and revoke.
    san.post("/volumes/vol1/grant", &[("client", "not an address")])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .has("value=\"not an address\"");
    san.post("/volumes/vol1/grant", &[("client", "192.0.2.0/24")])
        .await
        .expect(StatusCode::SEE_OTHER);
    san.get("/volumes/vol1")
        .await
        .has("<code>192.0.2.0/24</code>");
    san.post("/volumes/vol1/revoke", &[("client", "192.0.2.0/24")])
        .await
        .expect(StatusCode::SEE_OTHER);
    san.get("/volumes/vol1")
        .await
        .lacks("<code>192.0.2.0/24</code>");

    // Delete: a confirmation page; the wrong name keeps the volume.
    san.get("/volumes/vol1/delete")
        .await
        .expect(StatusCode::OK)
        .has("Delete volume vol1?");
    san.post("/volumes/vol1/delete", &[("confirm", "vol2")])
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .has("Type the volume&#39;s name, vol1, to delete it.");
    assert!(san.demo.operations().volume("vol1").await.is_ok());
    let gone = san
        .post("/volumes/vol1/delete", &[("confirm", "vol1")])
        .await;
    gone.expect(StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/volumes");
    san.get("/volumes").await.has("No volume yet.");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !inventory.volumes_of(&san2).await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the partition is gone from the unit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    san.demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_lays_out_three_units_and_they_leave_with_link_down_at_stop() {
    let San {
        demo,
        app,
        admin,
        db,
        _dir,
    } = san().await;
    let inventory = demo.operations().inventory().clone();
    let mut layout = Vec::new();
    for unit in inventory.units().await.unwrap() {
        let groups = inventory.groups_of(&unit.uuid).await.unwrap();
        let free = inventory
            .disks_of(&unit.uuid)
            .await
            .unwrap()
            .iter()
            .filter(|d| d.raid_group == 0)
            .count();
        layout.push((
            unit.name,
            groups.into_iter().map(|g| g.level).collect::<Vec<_>>(),
            free,
        ));
    }
    assert_eq!(
        layout,
        [
            ("san1.demo.test".to_owned(), vec!["raid5".to_owned()], 0),
            ("san2.demo.test".to_owned(), vec!["raid1".to_owned()], 0),
            ("san3.demo.test".to_owned(), vec![], 3),
        ]
    );
    admin
        .get(&app, "/")
        .await
        .has("<strong>3</strong> online")
        .has("coldStart");
    demo.stop().await.unwrap();
    let after = Inventory::open(&db).await.unwrap();
    for unit in after.units().await.unwrap() {
        assert_eq!(unit.unit_state(), UnitState::Offline, "{}", unit.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_unit_is_approved_from_its_page() {
    let san = san_admitting("manual").await;
    san.get("/")
        .await
        .has("<strong>3</strong> pending")
        .has("<strong>0</strong> online");
    let uuid = san.unit_uuid("san3.demo.test").await;
    let page = format!("/units/{uuid}");
    san.get(&page)
        .await
        .has("<span class=\"badge pending\">pending</span>")
        .has("Approve unit");
    let eve_password = "viewer password";
    san.demo
        .operations()
        .inventory()
        .add_user("eve", eve_password, dvsan_station::inventory::Role::Viewer)
        .await
        .unwrap();
    let eve = Session::login(&san.app, "eve", eve_password).await;
    eve.get(&san.app, &page).await.lacks("Approve unit");
    eve.post(&san.app, &format!("{page}/approve"), &[])
        .await
        .expect(StatusCode::FORBIDDEN);
    let approved = san.post(&format!("{page}/approve"), &[]).await;
    approved.expect(StatusCode::SEE_OTHER);
    assert_eq!(approved.location(), page);
    san.settled(&page, &["<span class=\"badge online\">online</span>"])
        .await
        .lacks("Approve unit");
    let unit = san
        .demo
        .operations()
        .inventory()
        .unit(&uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unit.unit_state(), UnitState::Online);
    san.demo.stop().await.unwrap();
}
